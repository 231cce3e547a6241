"""The correctness gate's runs in one process: what the workflow's jobs do across processes
(the baseline's reference run, the oracle, the float32 checks, a variant fed the baseline's
tokens), for the tests that plant bugs in a variant and the gate's resolution benchmark."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.base import ModelAdapter
from vlmprof.runtime.gate_references import exact_float32
from vlmprof.runtime.page_source import page_inputs
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.untimed_runs import batch_reference_outputs, free_memory
from vlmprof.variants.gate import GateFactors, Outputs, judge_variant
from vlmprof.variants.switches import apply_switches, arm_view, gate_check, oracle, split_view

# What a variant's models get before they run (a planted bug, say).
Alteration = Callable[[ModelAdapter], None]
# An arm as one mapping: its model spec's fields and its run settings (`switches.arm_view`).
View = Mapping[str, Any]


class GateRuns:
    """A baseline's gate runs on `images`: its own outputs (free greedy, each page up to its
    length as `settings.output_length` sets it), the oracle's and, for a run narrower than
    float32, its float32 check; `judge` runs a variant the same way (fed the baseline's
    tokens, so as long as its pages) and returns its verdict."""

    def __init__(
        self,
        baseline: ModelSpec,
        images: Mapping[str, Image.Image],
        settings: ProfileSettings,
        factors: GateFactors,
    ) -> None:
        self.view = arm_view(baseline, dataclasses.asdict(settings))
        self.images, self.factors = images, factors
        lengths = settings.output_length.page_lengths(images, settings.max_new_tokens)
        self.lengths = lengths.tokens
        self.baseline = self.outputs(self.view)
        self.oracle = self.outputs(oracle(self.view), True)
        check = gate_check(self.view)
        self.baseline_check = None if check is None else self.outputs(check, True)

    def outputs(self, view: View, forced: bool = False, alter: Alteration | None = None) -> Outputs:
        """The model of arm `view` (then `alter`ed) on every page, its batch size at a time;
        `forced`: fed the baseline's tokens."""
        spec, fields = split_view(view)
        settings = ProfileSettings(**fields)
        with exact_float32():
            adapter = build_adapter(spec)
            if alter is not None:
                alter(adapter)
            names = list(self.images)
            saved: dict[str, Any] = {}
            for first in range(0, len(names), settings.batch_size):
                batch = names[first : first + settings.batch_size]
                inputs = [
                    page_inputs(adapter, self.images[name], settings.preprocess) for name in batch
                ]
                against = [self.baseline[name] for name in batch] if forced else None
                lengths = [self.lengths[name] for name in batch]
                outputs = batch_reference_outputs(adapter, inputs, settings, against, lengths)
                saved.update(zip(batch, outputs, strict=True))
        device = adapter.device
        del adapter
        free_memory(device)
        return saved

    def judge(
        self, name: str, switches: Mapping[str, Any], alter: Alteration | None = None
    ) -> dict[str, Any]:
        """The gate's verdict on the baseline with variant `switches` (as the config names
        them), its models `alter`ed first (a planted bug)."""
        view = apply_switches(self.view, switches)
        variant = self.outputs(view, True, alter)
        checks = None
        check = gate_check(view)
        if check is not None and self.baseline_check is not None:
            checks = (self.baseline_check, self.outputs(check, True, alter))
        return judge_variant(name, self.baseline, variant, self.oracle, self.factors, checks)

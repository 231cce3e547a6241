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
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.profile_shard import batch_reference_outputs, free_memory
from vlmprof.variants.gate import GateFactors, Outputs, judge_variant
from vlmprof.variants.switches import gate_check_spec, oracle_spec

# What a variant's models get before they run (a planted bug, say).
Alteration = Callable[[ModelAdapter], None]


def _as_spec(fields: Mapping[str, Any]) -> ModelSpec:
    return ModelSpec(**fields)


class GateRuns:
    """A baseline's gate runs on `images`: its own outputs (free greedy), the oracle's and,
    for a run narrower than float32, its float32 check; `judge` runs a variant the same way
    and returns its verdict."""

    def __init__(
        self,
        baseline: ModelSpec,
        images: Mapping[str, Image.Image],
        settings: ProfileSettings,
        factors: GateFactors,
    ) -> None:
        self.spec, self.images, self.settings, self.factors = baseline, images, settings, factors
        self.baseline = self.outputs(baseline)
        self.oracle = self.outputs(_as_spec(oracle_spec(dataclasses.asdict(baseline))), True)
        check = gate_check_spec(dataclasses.asdict(baseline))
        self.baseline_check = None if check is None else self.outputs(_as_spec(check), True)

    def outputs(
        self, spec: ModelSpec, forced: bool = False, alter: Alteration | None = None
    ) -> Outputs:
        """The model `spec` builds (then `alter`ed) on every page, `spec.batch_size` at a
        time; `forced`: fed the baseline's tokens."""
        with exact_float32():
            adapter = build_adapter(spec)
            if alter is not None:
                alter(adapter)
            names = list(self.images)
            saved: dict[str, Any] = {}
            for first in range(0, len(names), spec.batch_size):
                batch = names[first : first + spec.batch_size]
                inputs = [adapter.preprocess(self.images[name]) for name in batch]
                against = [self.baseline[name] for name in batch] if forced else None
                outputs = batch_reference_outputs(adapter, inputs, self.settings, against)
                saved.update(zip(batch, outputs, strict=True))
        device = adapter.device
        del adapter
        free_memory(device)
        return saved

    def judge(
        self, name: str, changes: Mapping[str, Any], alter: Alteration | None = None
    ) -> dict[str, Any]:
        """The gate's verdict on the baseline with `changes` (ModelSpec fields), its models
        `alter`ed first (a planted bug)."""
        spec = dataclasses.replace(self.spec, **changes)
        variant = self.outputs(spec, True, alter)
        checks = None
        check = gate_check_spec(dataclasses.asdict(spec))
        if check is not None and self.baseline_check is not None:
            checks = (self.baseline_check, self.outputs(_as_spec(check), True, alter))
        return judge_variant(name, self.baseline, variant, self.oracle, self.factors, checks)

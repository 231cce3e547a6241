"""Jobs of the gate step: the correctness gate's runs of a shard at a higher precision (on a
claimed GPU, fed a reference's tokens) and each gated arm's verdict against them."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from vlmprof.atomic import atomic_open, write_json_atomic
from vlmprof.data.subset import first_pages, shard_pages
from vlmprof.models.base import ModelSpec
from vlmprof.records import did_not_fit, read_run_records
from vlmprof.runtime.gate_references import exact_float32, teacher_forced_outputs
from vlmprof.runtime.launcher import launched_model
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.variants.gate import GateFactors, judge_variant, merged_outputs, not_applicable
from vlmprof.variants.switches import BASELINE

log = logging.getLogger(__name__)


def gate_reference(
    subset: str,
    against: str,
    outputs: str,
    shard: int,
    *,
    spec: str,
    settings: str,
    shards: int,
    progress_label: str,
    pages: int | None = None,
) -> None:
    """The gate's run of one shard at a higher precision (`spec.upcast`): each page the
    baseline ran of the gate's sample (the subset's first `pages`; every page when None),
    fed the baseline's tokens (its outputs `against`), in float32 without TensorFloat-32;
    written like the timing pass's reference outputs."""
    table = pd.read_csv(subset)
    sample = first_pages(table, pages)
    judged = [page for page in shard_pages(table, shard, shards) if page[0] in sample]
    model = ModelSpec(**json.loads(spec))
    with exact_float32(), launched_model(model) as (adapter, placement):
        run = ProfileSettings(**json.loads(settings), shard=shard, eos_id=adapter.eos_token_id)
        log.info("gate run of shard %d in %s on %s", shard, adapter.dtype, placement.device)
        baseline = merged_outputs([against])
        saved = teacher_forced_outputs(adapter, judged, baseline, run, progress_label)
    with atomic_open(Path(outputs), "wb") as handle:
        torch.save(saved, handle)


def variant_gate(
    gate: str,
    name: str,
    *,
    reference: str = BASELINE,
    baseline: Sequence[str],
    variant: Sequence[str],
    oracle: Sequence[str] = (),
    code_path_factor: float,
    precision_factor: float,
    sweep_point: bool,
    switches: str,
    baseline_check: Sequence[str] = (),
    variant_check: Sequence[str] = (),
    records: Sequence[str] = (),
    subset: Sequence[str] = (),
    pages: int | None = None,
) -> None:
    """The correctness gate of variant `name`: its saved outputs, fed its `reference` arm's
    tokens (the baseline's, or a compared model's released path's for its best path),
    against that arm's (`baseline`) and its oracle's, every shard (with both arms' float32
    checks when the run is narrower); a sweep point (another workload) is not gated. Its run
    `records` say which pages did not fit (ran out of memory): those are not judged, nor
    are pages outside the gate's sample (the `subset`'s first `pages`, when set)."""
    if sweep_point:
        changed = ", ".join(f"{key} {value}" for key, value in sorted(json.loads(switches).items()))
        verdict = not_applicable(name, f"{changed}: a different workload from the baseline")
    else:
        checks = None
        if baseline_check:
            checks = (merged_outputs(baseline_check), merged_outputs(variant_check))
        verdict = judge_variant(
            name,
            merged_outputs(baseline),
            merged_outputs(variant),
            merged_outputs(oracle),
            GateFactors(code_path_factor, precision_factor),
            checks,
            did_not_fit={r.image_id for r in read_run_records(records) if did_not_fit(r.error)},
            reference=_judged_against(reference),
            sample=first_pages(pd.read_csv(subset[0]), pages) if pages is not None else None,
        )
    log.info("gate %s: %s (%s)", name, verdict["status"], verdict["detail"])
    write_json_atomic(Path(gate), verdict)


def _judged_against(reference: str) -> str:
    """How a gate's criterion names the arm it judged against."""
    return "the baseline" if reference == BASELINE else f"`{reference}`'s released path"

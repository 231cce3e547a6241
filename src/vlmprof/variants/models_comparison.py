"""Cost per page by model: the run's own model and each `models:` entry, each on its released
path and on its best gated path, profiled on the same pages with the same settings, side by
side from their metrics.json (models/comparison.json; `vlmprof.report.models` presents it).
Models do different work, so no model is judged faster than another (the verdicts of
`vlmprof.variants.paired` are for arms of one workload): the cheapest is named by its GPU
time per page at the cost section's output length, among the released paths and the best
paths whose correctness gate (against their own model's released path) passed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vlmprof.metrics.document import Cost, MbuStage, MetricsDocument, MfuStage
from vlmprof.models.base import LATER_FIELDS
from vlmprof.variants.best_path import BEST, RELEASED
from vlmprof.variants.comparison import headline_peak


@dataclass(frozen=True)
class ModelPath:
    """One compared model on one path: the model's name in the run, the path (released or
    best), the best path's switches and gate verdict (None for a released path), and the
    path's metrics."""

    name: str
    path: str
    metrics: MetricsDocument
    switches: Mapping[str, Any] = field(default_factory=dict)
    gate: Mapping[str, Any] | None = None

    @property
    def counted(self) -> bool:
        """Whether it may be named the cheapest: a released path, or a best path whose gate
        passed (one that failed computes another answer)."""
        return self.gate is None or self.gate["status"] == "passed"


def _mean(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _ratio(entry: MfuStage | MbuStage | None, peak: str) -> float | None:
    """A stage's MFU or MBU at `peak`; None where the run has no figure for the stage."""
    return None if entry is None else entry.at(peak)


def _gate(gate: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the comparison keeps of a best path's gate verdict."""
    if gate is None:
        return None
    keys = ("status", "detail", "code_path_ratio", "precision_ratio")
    return {key: gate.get(key) for key in keys}


def model_entry(arm: ModelPath) -> dict[str, Any]:
    """One model on one path: what it is, its pages' tokens, each stage's mean time, decode
    tokens/s, MFU and MBU against the headline peak, its cost section's figures and, for a
    best path, its switches and gate verdict."""
    metrics = arm.metrics
    # The spec as jobs get it (a mapping: its fields grow): later fields at their released
    # value are left out.
    spec = {**LATER_FIELDS, **metrics.config.get("resolved", {})}
    cost = metrics.cost or Cost()
    peak = headline_peak(metrics)
    model = spec.get("name")
    if model == "hf_vlm":
        model = f"hf_vlm: {spec.get('architecture')}"
    return {
        "name": arm.name,
        "path": arm.path,
        "switches": dict(arm.switches),
        "gate": _gate(arm.gate),
        "counted": arm.counted,
        "model": model,
        "preset": spec.get("preset"),
        "parameters": metrics.static.params.get("total"),
        "pages": metrics.counts.images,
        "pages_failed": metrics.counts.images_failed,
        "image_tokens": _mean([row.image_tokens for row in metrics.inputs]),
        "prefill_len": _mean([row.prefill_len for row in metrics.inputs]),
        "stage_ms": {
            stage: metrics.aggregates.mean_ms(stage)
            for stage in ("vision", "llm_prefill", "prefill", "decode_per_token")
        },
        "decode_tokens_per_s": metrics.aggregates.decode_tokens_per_s,
        "peak": peak,
        "mfu_prefill": _ratio(metrics.mfu.per_stage.get("prefill"), peak),
        "mbu_decode": _ratio(metrics.mbu.per_stage.get("decode"), peak),
        "cost": {
            "output_tokens": cost.output_tokens,
            "gpu_ms_per_page": cost.gpu_ms_per_page,
            "pages_per_gpu_day": cost.pages_per_gpu_day,
            "joules_per_page": cost.joules_per_page,
            "gpu_cost_per_1000_pages": cost.gpu_cost_per_1000_pages,
            "energy_cost_per_1000_pages": cost.energy_cost_per_1000_pages,
        },
    }


def _with_saving(entry: dict[str, Any], released: Mapping[str, Any] | None) -> dict[str, Any]:
    """A best path's entry with its GPU time per page over its released path's."""
    if entry["path"] != BEST:
        return entry
    ms = entry["cost"]["gpu_ms_per_page"]
    base = None if released is None else released["cost"]["gpu_ms_per_page"]
    return entry | {"of_released": None if None in (ms, base) else ms / base}


def cheapest(entries: Sequence[Mapping[str, Any]], paths: Sequence[str]) -> dict | None:
    """The counted entry on one of `paths` with the least GPU time per page, as
    {name, path}; None where none was costed."""
    costed = [
        e
        for e in entries
        if e["counted"] and e["path"] in paths and e["cost"]["gpu_ms_per_page"] is not None
    ]
    pick = min(costed, key=lambda e: e["cost"]["gpu_ms_per_page"], default=None)
    return None if pick is None else {"name": pick["name"], "path": pick["path"]}


def compare_models(arms: Sequence[ModelPath]) -> dict[str, Any]:
    """models/comparison.json content: one entry per model and path (the run's own model
    first, each best path after its released one), the cheapest among the released paths
    and the gate-passed best paths, and the cheapest on the released paths alone."""
    entries = [model_entry(arm) for arm in arms]
    released = {e["name"]: e for e in entries if e["path"] == RELEASED}
    entries = [_with_saving(e, released.get(e["name"])) for e in entries]
    return {
        "models": entries,
        "cheapest": cheapest(entries, (RELEASED, BEST)),
        "cheapest_released": cheapest(entries, (RELEASED,)),
        # The run's `cost.output_tokens`, the same for every model's cost section.
        "output_tokens": entries[0]["cost"]["output_tokens"],
    }

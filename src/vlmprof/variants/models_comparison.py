"""Cost per page by model: the run's own model and each `models:` entry, profiled on the same
pages with the same settings, side by side from their metrics.json (models/comparison.json;
`vlmprof.report.models` presents it). Models do different work, so no model is judged
faster than another (the verdicts of `vlmprof.variants.paired` are for arms of one
workload): the cheapest is named by its GPU time per page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmprof.metrics.document import Cost, MbuStage, MetricsDocument, MfuStage
from vlmprof.models.base import LATER_FIELDS
from vlmprof.variants.comparison import headline_peak


def _mean(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _ratio(entry: MfuStage | MbuStage | None, peak: str) -> float | None:
    """A stage's MFU or MBU at `peak`; None where the run has no figure for the stage."""
    return None if entry is None else entry.at(peak)


def model_entry(name: str, metrics: MetricsDocument) -> dict[str, Any]:
    """One model's figures: what it is, its pages' tokens, each stage's mean time, decode
    tokens/s, MFU and MBU against the headline peak, and its cost section's figures."""
    # The spec as jobs get it (a mapping: its fields grow): later fields at their released
    # value are left out.
    spec = {**LATER_FIELDS, **metrics.config.get("resolved", {})}
    cost = metrics.cost or Cost()
    peak = headline_peak(metrics)
    model = spec.get("name")
    if model == "hf_vlm":
        model = f"hf_vlm: {spec.get('architecture')}"
    return {
        "name": name,
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


def compare_models(runs: Mapping[str, MetricsDocument]) -> dict[str, Any]:
    """models/comparison.json content: one entry per model (the run's own first), and the
    cheapest by GPU time per page."""
    entries = [model_entry(name, metrics) for name, metrics in runs.items()]
    costed = [e for e in entries if e["cost"]["gpu_ms_per_page"] is not None]
    cheapest = min(costed, key=lambda e: e["cost"]["gpu_ms_per_page"], default=None)
    return {
        "models": entries,
        "cheapest": cheapest["name"] if cheapest else None,
        # The run's `cost.output_tokens`, the same for every model's cost section.
        "output_tokens": entries[0]["cost"]["output_tokens"],
    }

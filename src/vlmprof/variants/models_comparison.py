"""Cost per page by model: the run's own model and each `models:` entry, profiled on the same
pages with the same settings, side by side from their metrics.json (models/comparison.json;
`vlmprof.report.models` presents it). Models do different work, so no model is judged
faster than another (the verdicts of `vlmprof.variants.paired` are for arms of one
workload): the cheapest is named by its GPU time per page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmprof.models.base import LATER_FIELDS
from vlmprof.variants.comparison import headline_peak


def _mean(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _stage_mean(metrics: Mapping[str, Any], stage: str) -> float | None:
    return ((metrics.get("aggregates") or {}).get("stage_ms", {}).get(stage) or {}).get("mean")


def _ratio(section: Mapping[str, Any], stage: str, peak: str) -> float | None:
    return ((section.get("per_stage") or {}).get(stage) or {}).get(peak)


def model_entry(name: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One model's figures: what it is, its pages' tokens, each stage's mean time, decode
    tokens/s, MFU and MBU against the headline peak, and its cost section's figures."""
    # The spec as jobs get it: later fields at their released value are left out.
    spec = {**LATER_FIELDS, **((metrics.get("config") or {}).get("resolved") or {})}
    inputs = metrics.get("inputs") or []
    cost = metrics.get("cost") or {}
    mfu, mbu = metrics.get("mfu") or {}, metrics.get("mbu") or {}
    peak = headline_peak(metrics)
    model = spec.get("name")
    if model == "hf_vlm":
        model = f"hf_vlm: {spec.get('architecture')}"
    return {
        "name": name,
        "model": model,
        "preset": spec.get("preset"),
        "parameters": ((metrics.get("static") or {}).get("params") or {}).get("total"),
        "pages": (metrics.get("counts") or {}).get("images"),
        "pages_failed": (metrics.get("counts") or {}).get("images_failed"),
        "image_tokens": _mean([row.get("image_tokens") for row in inputs]),
        "prefill_len": _mean([row.get("prefill_len") for row in inputs]),
        "stage_ms": {
            stage: _stage_mean(metrics, stage)
            for stage in ("vision", "llm_prefill", "prefill", "decode_per_token")
        },
        "decode_tokens_per_s": (metrics.get("aggregates") or {}).get("decode_tokens_per_s"),
        "peak": peak,
        "mfu_prefill": _ratio(mfu, "prefill", peak),
        "mbu_decode": _ratio(mbu, "decode", peak),
        "cost": {
            key: cost.get(key)
            for key in (
                "output_tokens",
                "gpu_ms_per_page",
                "pages_per_gpu_day",
                "joules_per_page",
                "gpu_cost_per_1000_pages",
                "energy_cost_per_1000_pages",
            )
        },
    }


def compare_models(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
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

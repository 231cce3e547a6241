"""Cost per page by model: the run's own model and each `models:` entry, profiled on the same
pages with the same settings, side by side from their metrics.json (data in
models/comparison.json, tables here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.models.base import LATER_FIELDS
from vlmprof.report.formatting import format_number
from vlmprof.variants.comparison import headline_peak

COMPARISON_FILE = "models/comparison.json"
NO_MODELS = (
    "This run profiles one model. To compare models by cost per page, name them under "
    "`models:` in the config, each a `model:` section (e.g. `got: {name: hf_vlm, "
    "architecture: got_ocr2}`), and rerun."
)


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


def read_model_comparison(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's models/comparison.json, or None when the run compares no models."""
    path = Path(run_dir) / COMPARISON_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def models_table(comparison: Mapping[str, Any]) -> pd.DataFrame:
    """One row per model: what it is, tokens per page, ms per page by stage, decode tokens/s,
    MFU and MBU (%), and what a page of the cost section's length costs."""
    rows = []
    for entry in comparison["models"]:
        cost, stage_ms = entry["cost"], entry["stage_ms"]
        params = entry["parameters"]
        money = [cost["gpu_cost_per_1000_pages"], cost["energy_cost_per_1000_pages"]]
        priced = [value for value in money if value is not None]
        rows.append(
            {
                "model": entry["name"],
                "adapter": entry["model"],
                "preset": entry["preset"],
                "pages (failed)": f"{entry['pages']} ({entry['pages_failed']})",
                "parameters (M)": None if params is None else params / 1e6,
                "vision tokens per page": entry["image_tokens"],
                "prompt tokens per page": entry["prefill_len"],
                "vision (ms)": stage_ms["vision"],
                "LLM prefill (ms)": stage_ms["llm_prefill"],
                "prefill (ms)": stage_ms["prefill"],
                "decode per token (ms)": stage_ms["decode_per_token"],
                "decode tokens/s": entry["decode_tokens_per_s"],
                f"prefill MFU ({entry['peak']}, %)": _percent(entry["mfu_prefill"]),
                f"decode MBU ({entry['peak']}, %)": _percent(entry["mbu_decode"]),
                f"GPU ms per page of {cost['output_tokens']} tokens": cost["gpu_ms_per_page"],
                "pages per GPU-day": cost["pages_per_gpu_day"],
                "energy per page (J)": cost["joules_per_page"],
                "cost per 1,000 pages": sum(priced) if priced else None,
            }
        )
    return pd.DataFrame(rows).set_index("model").dropna(axis="columns", how="all")


def page_parts(comparison: Mapping[str, Any]) -> pd.DataFrame:
    """Per model whose pages were timed, the GPU time (s) of a page of the comparison's
    `output_tokens` tokens by part: vision, LLM prefill, and its decode steps (the measured
    time per token times the tokens after the first)."""
    steps = max(comparison["output_tokens"] - 1, 0)
    rows = {
        entry["name"]: {
            "vision": entry["stage_ms"]["vision"] / 1000.0,
            "llm_prefill": entry["stage_ms"]["llm_prefill"] / 1000.0,
            "decode": entry["stage_ms"]["decode_per_token"] * steps / 1000.0,
        }
        for entry in comparison["models"]
        if None not in (entry["stage_ms"][s] for s in ("vision", "llm_prefill", "decode_per_token"))
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["vision", "llm_prefill", "decode"])


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def cheapest_sentence(comparison: Mapping[str, Any]) -> str:
    """Which model costs least GPU time per page, and by how much over the dearest."""
    entries = {e["name"]: e for e in comparison["models"]}
    name = comparison.get("cheapest")
    if name is None:
        return "No model was costed: no page ran."
    times = {n: e["cost"]["gpu_ms_per_page"] for n, e in entries.items()}
    costed = {n: t for n, t in times.items() if t is not None}
    dearest = max(costed, key=costed.__getitem__)
    tokens = entries[name]["cost"]["output_tokens"]
    sentence = (
        f"At {tokens:,} output tokens a page, `{name}` ({entries[name]['model']}) costs the "
        f"least GPU time per page: {costed[name]:,.0f} ms"
    )
    if dearest != name:
        sentence += (
            f", {costed[dearest] / costed[name]:.1f}x less than `{dearest}` "
            f"({costed[dearest]:,.0f} ms)"
        )
    return (
        sentence + ". The weights are random: this compares what each model's shapes cost, "
        "not how well it reads."
    )


def to_markdown(comparison: Mapping[str, Any], table: pd.DataFrame) -> str:
    """models/comparison.md: the comparison's table (`models_table`) and the cheapest model
    in a sentence."""
    shown = table.map(format_number)
    return "\n".join(
        ["# Cost per page by model", "", shown.to_markdown(), "", cheapest_sentence(comparison), ""]
    )

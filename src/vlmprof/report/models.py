"""Cost per page by model: the run's own model and each `models:` entry, profiled on the same
pages with the same settings, side by side (models/comparison.json, computed by
`vlmprof.variants.models_comparison`; tables and sentences here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.report.formatting import format_number

COMPARISON_FILE = "models/comparison.json"
NO_MODELS = (
    "This run profiles one model. To compare models by cost per page, name them under "
    "`models:` in the config, each a `model:` section (e.g. `got: {name: hf_vlm, "
    "architecture: got_ocr2}`), and rerun."
)


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

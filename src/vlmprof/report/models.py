"""Cost per page by model: the run's own model and each `models:` entry, each on its released
path and its best gated path, profiled on the same pages with the same settings, side by
side (models/comparison.json, computed by `vlmprof.variants.models_comparison`; tables and
sentences here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.report.formatting import format_number, times
from vlmprof.variants.best_path import BEST

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


def path_label(entry: Mapping[str, Any]) -> str:
    """How a table row or a bar names a model on a path: the model's name, `, best path`
    after it for its best path, and `(gate failed)` where that path failed its gate."""
    if entry["path"] != BEST:
        return entry["name"]
    failed = "" if entry["counted"] else " (gate failed)"
    return f"{entry['name']}, best path{failed}"


def _switches(entry: Mapping[str, Any]) -> str:
    """A best path's switches in words (`decode static, experts grouped`)."""
    return ", ".join(f"{key} {value}" for key, value in entry["switches"].items())


def _gate(entry: Mapping[str, Any]) -> str | None:
    """A best path's gate verdict in a word and its largest error ratio; None for a released
    path (the reference it is judged against)."""
    gate = entry["gate"]
    if gate is None:
        return None
    ratio = gate["code_path_ratio"]
    if ratio is None:
        return gate["status"]
    return f"{gate['status']} (largest error {times(ratio)} the released path's)"


def models_table(comparison: Mapping[str, Any]) -> pd.DataFrame:
    """One row per model and path: what it is, its decode path and gate verdict, tokens per
    page, ms per page by stage, decode tokens/s, MFU and MBU (%), and what a page of the
    cost section's length costs (a best path's also as a share of its released path's)."""
    rows = []
    for entry in comparison["models"]:
        cost, stage_ms = entry["cost"], entry["stage_ms"]
        params = entry["parameters"]
        money = [cost["gpu_cost_per_1000_pages"], cost["energy_cost_per_1000_pages"]]
        priced = [value for value in money if value is not None]
        rows.append(
            {
                "model": path_label(entry),
                "adapter": entry["model"],
                "preset": entry["preset"],
                "decode path": _switches(entry) if entry["path"] == BEST else "released",
                "gate against its released path": _gate(entry),
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
                "of its released path's": entry.get("of_released"),
                "pages per GPU-day": cost["pages_per_gpu_day"],
                "energy per page (J)": cost["joules_per_page"],
                "cost per 1,000 pages": sum(priced) if priced else None,
            }
        )
    return pd.DataFrame(rows).set_index("model").dropna(axis="columns", how="all")


def page_parts(comparison: Mapping[str, Any]) -> pd.DataFrame:
    """Per model and path whose pages were timed, the GPU time (s) of a page of the
    comparison's `output_tokens` tokens by part: vision, LLM prefill, and its decode steps
    (the measured time per token times the tokens after the first)."""
    steps = max(comparison["output_tokens"] - 1, 0)
    rows = {
        path_label(entry): {
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


def _on_path(entry: Mapping[str, Any]) -> str:
    """A model on its path, in words: "`got` (hf_vlm: got_ocr2) on its best path (decode
    static)"."""
    path = "released path"
    if entry["path"] == BEST:
        path = f"best path ({_switches(entry)})"
    return f"`{entry['name']}` ({entry['model']}) on its {path}"


def _entry(comparison: Mapping[str, Any], pick: Mapping[str, Any] | None) -> Mapping | None:
    """The entry `pick` ({name, path}) names, or None."""
    if pick is None:
        return None
    return next(
        e for e in comparison["models"] if (e["name"], e["path"]) == (pick["name"], pick["path"])
    )


def cheapest_sentence(comparison: Mapping[str, Any]) -> str:
    """Which model on which path costs least GPU time per page (a best path only where its
    gate passed), by how much over the dearest, the cheapest on the released paths alone
    where another, and the best paths not counted because their gate failed."""
    cheapest = _entry(comparison, comparison.get("cheapest"))
    if cheapest is None:
        return "No model was costed: no page ran."
    counted = [
        e for e in comparison["models"] if e["counted"] and e["cost"]["gpu_ms_per_page"] is not None
    ]
    dearest = max(counted, key=lambda e: e["cost"]["gpu_ms_per_page"])
    ms = cheapest["cost"]["gpu_ms_per_page"]
    sentences = [
        f"At {cheapest['cost']['output_tokens']:,} output tokens a page, {_on_path(cheapest)} "
        f"costs the least GPU time per page: {ms:,.0f} ms"
    ]
    if dearest is not cheapest:
        most = dearest["cost"]["gpu_ms_per_page"]
        sentences[0] += f", {most / ms:.1f}x less than {_on_path(dearest)} ({most:,.0f} ms)"
    released = _entry(comparison, comparison.get("cheapest_released"))
    if released is not None and released is not cheapest:
        sentences.append(
            f"On the released paths alone, `{released['name']}` ({released['model']}) is the "
            f"cheapest: {released['cost']['gpu_ms_per_page']:,.0f} ms"
        )
    failed = [f"`{e['name']}`" for e in comparison["models"] if not e["counted"]]
    if failed:
        sentences.append(
            f"Not counted: the best path of {', '.join(failed)}, which failed the correctness "
            "gate against its released path"
        )
    sentences.append(
        "The weights are random: this compares what each model's shapes cost, not how well "
        "it reads."
    )
    return ". ".join(sentences)


def to_markdown(comparison: Mapping[str, Any], table: pd.DataFrame) -> str:
    """models/comparison.md: the comparison's table (`models_table`) and the cheapest model
    in a sentence."""
    shown = table.map(format_number)
    return "\n".join(
        ["# Cost per page by model", "", shown.to_markdown(), "", cheapest_sentence(comparison), ""]
    )

"""The cost section: what a page of real length costs (metrics.json's `cost`), as a table, a
sentence and the published throughput beside it."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vlmprof.report.formatting import format_number

NO_COST = "No cost per page: {reason}."


def cost_table(cost: dict[str, Any]) -> pd.DataFrame:
    """One row per figure of a page of `output_tokens` tokens at the run's batch size: GPU
    and host time, pages per GPU-day, output tokens/s, and the money figures where priced."""
    if not cost.get("available"):
        return pd.DataFrame(columns=["value"])
    tokens = cost["output_tokens"]
    rows = {
        "pages per batch": cost.get("batch_size", 1),
        f"GPU time per page of {tokens:,} tokens (ms)": cost["gpu_ms_per_page"],
        "host time per page: load + preprocess (ms)": cost["host_ms_per_page"],
        "pages per GPU-day, host overlapped": cost["pages_per_gpu_day"],
        "pages per GPU-day, host serial": cost["pages_per_gpu_day_serial"],
        "output tokens/s": cost["output_tokens_per_s"],
        "energy per page (J)": cost["joules_per_page"],
    }
    if cost["gpu_hour_price"] is not None:
        rows[f"GPU cost per 1,000 pages (at {cost['gpu_hour_price']:g} per GPU-hour)"] = cost[
            "gpu_cost_per_1000_pages"
        ]
    if cost["energy_cost_per_1000_pages"] is not None:
        rows["energy cost per 1,000 pages"] = cost["energy_cost_per_1000_pages"]
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def published_table(cost: dict[str, Any]) -> pd.DataFrame:
    """The published DeepSeek-OCR throughput the run's figures are read against."""
    rows = cost.get("published", [])
    return pd.DataFrame(
        [{k: row[k] for k in ("figure", "setting", "source")} for row in rows],
        columns=["figure", "setting", "source"],
    )


def cost_sentence(cost: dict[str, Any]) -> str:
    """One sentence a stakeholder reads: a page's GPU time at its real length, pages per
    GPU-day and the price, with what it assumes."""
    if not cost.get("available"):
        return NO_COST.format(reason=cost.get("reason", "not computed by this run"))
    tokens = cost["output_tokens"]
    sentence = (
        f"A page of {tokens:,} output tokens takes about "
        f"{format_number(cost['gpu_ms_per_page'] / 1000)} s of GPU time {_at_batch(cost)} "
        f"(prefill {format_number(cost['prefill_ms'])} ms, then "
        f"{format_number(cost['decode_per_token_ms'])} ms per token, measured over "
        f"{format_number(cost['measured_tokens'])} tokens): about "
        f"{format_number(round(cost['pages_per_gpu_day']))} pages per GPU-day, or "
        f"{format_number(round(cost['pages_per_gpu_day_serial']))} if the host's "
        f"{format_number(cost['host_ms_per_page'])} ms of loading and preprocessing run in "
        "series"
    )
    if cost["gpu_cost_per_1000_pages"] is not None:
        sentence += (
            f"; {format_number(cost['gpu_cost_per_1000_pages'])} per 1,000 pages at "
            f"{cost['gpu_hour_price']:g} per GPU-hour"
        )
    return sentence + "."


def _at_batch(cost: dict[str, Any]) -> str:
    """How many pages shared the GPU in the figures."""
    batch = cost.get("batch_size", 1)
    return "one page at a time" if batch == 1 else f"in batches of {format_number(batch)} pages"

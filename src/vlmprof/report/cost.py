"""The cost section: what a page of real length costs (metrics.json's `cost`), as a table, a
sentence and the published throughput beside it."""

from __future__ import annotations

import pandas as pd

from vlmprof.metrics.document import Cost
from vlmprof.report.formatting import format_number

NO_COST = "No cost per page: {reason}."
# Why a run's metrics.json has no cost section.
PREDATES = "this run predates the figure"


def cost_table(cost: Cost | None) -> pd.DataFrame:
    """One row per figure of a page of `output_tokens` tokens at the run's batch size: GPU
    and host time, pages per GPU-day, output tokens/s, and the money figures where priced."""
    if cost is None or not cost.available:
        return pd.DataFrame(columns=["value"])
    tokens = cost.output_tokens
    rows = {
        "pages per batch": _batch_size(cost),
        f"GPU time per page of {tokens:,} tokens (ms)": cost.gpu_ms_per_page,
        "host time per page: load + preprocess (ms)": cost.host_ms_per_page,
        "pages per GPU-day, host overlapped": cost.pages_per_gpu_day,
        "pages per GPU-day, host serial": cost.pages_per_gpu_day_serial,
        "output tokens/s": cost.output_tokens_per_s,
        "energy per page (J)": cost.joules_per_page,
    }
    if cost.gpu_hour_price is not None:
        rows[f"GPU cost per 1,000 pages (at {cost.gpu_hour_price:g} per GPU-hour)"] = (
            cost.gpu_cost_per_1000_pages
        )
    if cost.energy_cost_per_1000_pages is not None:
        rows["energy cost per 1,000 pages"] = cost.energy_cost_per_1000_pages
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def published_table(cost: Cost | None) -> pd.DataFrame:
    """The published DeepSeek-OCR throughput the run's figures are read against."""
    rows = [] if cost is None else cost.published
    return pd.DataFrame(
        [{"figure": row.figure, "setting": row.setting, "source": row.source} for row in rows],
        columns=["figure", "setting", "source"],
    )


def cost_sentence(cost: Cost | None) -> str:
    """One sentence a stakeholder reads: a page's GPU time at its real length, pages per
    GPU-day and the price, with what it assumes."""
    if cost is None:
        return NO_COST.format(reason=PREDATES)
    if not cost.available:
        return NO_COST.format(reason=cost.reason or "not computed by this run")
    sentence = (
        f"A page of {cost.output_tokens:,} output tokens takes about "
        f"{format_number(cost.gpu_ms_per_page / 1000)} s of GPU time {_at_batch(cost)} "
        f"(prefill {format_number(cost.prefill_ms)} ms, then "
        f"{format_number(cost.decode_per_token_ms)} ms per token, measured over "
        f"{format_number(cost.measured_tokens)} tokens): about "
        f"{format_number(round(cost.pages_per_gpu_day))} pages per GPU-day, or "
        f"{format_number(round(cost.pages_per_gpu_day_serial))} if the host's "
        f"{format_number(cost.host_ms_per_page)} ms of loading and preprocessing run in "
        "series"
    )
    if cost.gpu_cost_per_1000_pages is not None:
        sentence += (
            f"; {format_number(cost.gpu_cost_per_1000_pages)} per 1,000 pages at "
            f"{cost.gpu_hour_price:g} per GPU-hour"
        )
    return sentence + "."


def _batch_size(cost: Cost) -> float:
    """Pages that shared the GPU (cost sections from before batching ran one at a time)."""
    return 1 if cost.batch_size is None else cost.batch_size


def _at_batch(cost: Cost) -> str:
    """How many pages shared the GPU in the figures."""
    batch = _batch_size(cost)
    return "one page at a time" if batch == 1 else f"in batches of {format_number(batch)} pages"

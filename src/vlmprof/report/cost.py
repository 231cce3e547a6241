"""The cost section: what a page of real length costs (metrics.json's `cost`), end to end
with the GPU side beside it, as a table, a sentence and the published throughput beside it;
on a CPU run in CPU time and CPU-days."""

from __future__ import annotations

import pandas as pd

from vlmprof.metrics.document import Cost
from vlmprof.report.formatting import format_number, whole

NO_COST = "No cost per page: {reason}."
# Why a run's metrics.json has no cost section.
PREDATES = "this run predates the figure"
# Why a cost section has no end-to-end figures.
NO_END_TO_END = (
    "no end-to-end figure (pages per {device}-day, latency, price): the run's records "
    "predate the host-clock spans they are measured from"
)


def device(cost: Cost) -> str:
    """What ran the model, as the figures name it: GPU, or CPU (sections from before it was
    named ran on whatever they ran on: GPU, as they called it)."""
    return cost.processor or "GPU"


def cost_table(cost: Cost | None) -> pd.DataFrame:
    """One row per figure of a page of `output_tokens` tokens at the run's batch size: its
    device time end to end and on the GPU side, host time, latency p50 and p90, pages per
    device-day, output tokens/s and the money figures where priced; counts as whole
    numbers."""
    if cost is None or not cost.available:
        return pd.DataFrame(columns=["value"])
    tokens, on = cost.output_tokens, device(cost)
    latency = cost.page_latency_ms
    rows = {
        "pages per batch": whole(_batch_size(cost)),
        f"{on} time per page end to end (ms)": cost.end_to_end_ms_per_page,
        f"{on} time per page of {tokens:,} tokens, prefill + decode (ms)": cost.gpu_ms_per_page,
        "host time per page: load + preprocess (ms)": cost.host_ms_per_page,
        "page latency p50 (ms)": None if latency is None else latency.p50,
        "page latency p90 (ms)": None if latency is None else latency.p90,
        f"pages per {on}-day, end to end": whole(cost.pages_per_gpu_day),
        "output tokens/s end to end, per device": cost.output_tokens_per_s_end_to_end,
        f"output tokens/s, {on} side": cost.output_tokens_per_s_gpu_side,
        "energy per page (J)": cost.joules_per_page,
    }
    if cost.gpu_hour_price is not None:
        rows[f"cost per 1,000 pages (at {cost.gpu_hour_price:g} per {on}-hour)"] = (
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
    """What a stakeholder reads: a page's device time at its real length end to end, and of
    it on the GPU side, pages per device-day and the price, then how long a page waits."""
    if cost is None:
        return NO_COST.format(reason=PREDATES)
    if not cost.available:
        return NO_COST.format(reason=cost.reason or "not computed by this run")
    on = device(cost)
    measured = (
        f"(prefill {format_number(cost.prefill_ms)} ms, then "
        f"{format_number(cost.decode_per_token_ms)} ms per token, measured over "
        f"{format_number(whole(cost.measured_tokens))} tokens)"
    )
    opening = f"A page of {cost.output_tokens:,} output tokens {_at_batch(cost)}"
    gpu_side = _seconds(cost.gpu_ms_per_page)
    if cost.end_to_end_ms_per_page is None:
        return (
            f"{opening} takes {gpu_side} s of {on} time in prefill and decode {measured}; "
            f"{NO_END_TO_END.format(device=on)}."
        )
    sentence = (
        f"{opening} holds the {on} {_seconds(cost.end_to_end_ms_per_page)} s end to end (its "
        f"share of its batch's wait for its pages and of its batch's run, measured), "
        f"{gpu_side} s of it in prefill and decode {measured}: about "
        f"{format_number(whole(cost.pages_per_gpu_day))} pages per {on}-day"
    )
    if cost.gpu_cost_per_1000_pages is not None:
        sentence += (
            f", {format_number(cost.gpu_cost_per_1000_pages)} per 1,000 pages at "
            f"{cost.gpu_hour_price:g} per {on}-hour"
        )
    latency = cost.page_latency_ms
    if latency is not None:
        sentence += (
            f". From its read to its last token a page waits {_seconds(latency.p50)} s "
            f"(p50) and {_seconds(latency.p90)} s (p90) over {latency.n} pages"
        )
    return sentence + "."


def _seconds(ms: float) -> str:
    return format_number(ms / 1000)


def _batch_size(cost: Cost) -> float:
    """Pages that shared the device (cost sections from before batching ran one at a time)."""
    return 1 if cost.batch_size is None else cost.batch_size


def _at_batch(cost: Cost) -> str:
    """How many pages shared the device in the figures."""
    batch = _batch_size(cost)
    if batch == 1:
        return "one page at a time"
    return f"in batches of {format_number(whole(batch))} pages"

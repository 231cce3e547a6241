"""What a page costs: pages per GPU-day, output tokens per second, each page's latency and
money per 1,000 pages, at the output length a real page needs, from the run's measured
end-to-end wall time.

The timed runs generate `max_new_tokens` tokens; a real page needs about 1,000. Each batch's
measured run is taken to that length (decode steps added or removed at the run's measured
mean time per step); everything else is measured: the wall time end to end on the host's clock
(`vlmprof.metrics.end_to_end`: each batch's wait for its pages, then its run), from which
pages per GPU-day and the price follow, and each page's latency (its own load and
preprocessing, its batch's wait for the pages read after it, its batch's run), whose p50
and p90 are across the pages. The GPU side (prefill and decode alone) stands beside them.
Each figure says what it assumes, and the published DeepSeek-OCR throughput stands beside
them for scale. On a CPU run the device is the processor, and `processor` says so.
"""

from __future__ import annotations

from typing import Any

from vlmprof.metrics.aggregate import batch_size, ok_records, page_share
from vlmprof.metrics.end_to_end import BatchTimes, batch_times
from vlmprof.metrics.stats import summarize
from vlmprof.metrics.telemetry import JOULES_PER_KWH
from vlmprof.stages import HOST_STAGES

MS_PER_DAY = 86_400_000.0
MS_PER_HOUR = 3_600_000.0
DEFAULT_OUTPUT_TOKENS = 1000
# Published throughput of DeepSeek-OCR, for scale (not measured here).
PUBLISHED = (
    {
        "figure": "200k+ pages per day",
        "pages_per_day": 200_000,
        "setting": "one A100-40G, producing training data",
        "source": "DeepSeek-OCR paper (arXiv 2510.18234), abstract",
    },
    {
        "figure": "~2,500 tokens/s",
        "tokens_per_s": 2_500,
        "setting": "one A100-40G, PDF pages through vLLM with concurrency",
        "source": "DeepSeek-OCR repository README (vLLM inference)",
    },
)
LENGTH_MIX = (
    "length mix: every page has output_tokens tokens; each batch's measured run is taken to "
    "that length by adding (or removing) decode steps at the run's measured mean time per "
    "step (a longer output reads a longer KV cache each step, so this is a floor), and with "
    "a mix of lengths a batch would run as long as its longest page"
)
END_TO_END = (
    "measured end to end: pages per {device}-day, the end-to-end rate and the price divide "
    "by the wall time on the host's clock, each batch's wait for its pages then its run, the "
    "measurement's own work (warm-up, the gate's reference generations, the work count, "
    "later repeats, the inputs' copy to the device) left out; worker processes read ahead "
    "during that work too, so with workers the waits are a floor"
)
LATENCY = (
    "a page's latency counts from its own read: its load and preprocessing, its batch's wait "
    "for the pages read after it, its batch's run; a page a worker read ahead waits the whole "
    "wait, and the time it sat ready before is not counted"
)
ENERGY = (
    "energy per page: the measured prefill energy + (N - 1) x the measured decode energy per "
    "step, the GPU's during prefill and decode only"
)


def _mean(stage_ms: dict[str, Any], stage: str) -> float | None:
    stats = stage_ms.get(stage)
    return None if not stats or stats.get("mean") is None else float(stats["mean"])


def processor(records: list[dict[str, Any]]) -> str:
    """What ran the model: "GPU" when any ok record ran on a CUDA device, else "CPU"."""
    on_gpu = any(str(r.get("device") or "").startswith("cuda") for r in ok_records(records))
    return "GPU" if on_gpu else "CPU"


def gpu_ms_per_page(records: list[dict[str, Any]], output_tokens: int, step_ms: float) -> float:
    """Prefill and decode of a page at `output_tokens` tokens, total over total across the
    ok `records` that timed both: each its batch's measured time with the decode steps it
    lacks at `step_ms` each, shared by its pages."""
    timed = [r for r in records if None not in (r.get("prefill_ms"), r.get("decode_ms"))]
    total = 0.0
    for record in timed:
        steps = len(record.get("decode_step_ms") or [])
        batch_ms = record["prefill_ms"] + record["decode_ms"]
        total += page_share(batch_ms + (output_tokens - 1 - steps) * step_ms, batch_size(record))
    return total / len(timed)


def _energy_per_page(
    telemetry: dict[str, Any], decode_steps: float | None, output_tokens: int
) -> float | None:
    """Joules of a page of `output_tokens` tokens from the measured prefill and decode
    energy; None without telemetry or decode steps."""
    if not telemetry.get("available") or not decode_steps:
        return None
    energy = telemetry["energy_j"]
    prefill, decode = energy.get("prefill") or {}, energy.get("decode") or {}
    if prefill.get("mean") is None or decode.get("mean") is None:
        return None
    return prefill["mean"] + (output_tokens - 1) * decode["mean"] / decode_steps


def _batching(batch: float) -> str:
    """What the figures assume about pages sharing the device."""
    if batch == 1:
        return "one page at a time (batch 1): the run's batch_size is 1"
    return (
        f"static batching, {batch:g} pages at a time: a batch's time is shared by its pages, "
        "it runs until its last page's last token, and each of its pages waits all of it"
    )


def _pricing(price: float | None, device: str) -> str:
    """What the price is."""
    if price is None:
        return "no price: cost.gpu_hour_price is not set"
    return (
        f"price: {price:g} per {device}-hour, set in the configuration (cost.gpu_hour_price), "
        "not measured; an hour is paid whole, whatever the device does in it"
    )


def _end_to_end_ms_per_page(
    end_to_end: dict[str, Any] | None,
    batches: list[BatchTimes],
    output_tokens: int,
    step_ms: float,
) -> float | None:
    """Device time of a page end to end (ms): the run's measured device time with each
    batch's run taken to `output_tokens` tokens, over its pages; None without spans."""
    if end_to_end is None or not batches:
        return None
    extra_s = sum(b.run_at_s(output_tokens, step_ms) - (b.run_s[1] - b.run_s[0]) for b in batches)
    return (end_to_end["device_s"] + extra_s) / end_to_end["pages"] * 1000.0


def cost_section(
    records: list[dict[str, Any]],
    aggregates: dict[str, Any],
    telemetry: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json's `cost`: per page of `settings["output_tokens"]` tokens (the config's
    `cost` section), its device time end to end and on the GPU side, pages per GPU-day,
    output tokens/s, each page's latency (p50, p90), and with `gpu_hour_price` the cost per
    1,000 pages; with telemetry and `telemetry.energy_price_per_kwh` the energy cost too.
    `records` are the run's, `aggregates` metrics.json's (`aggregate_records`).
    {available: False, reason} when no page was timed."""
    output_tokens = int(settings.get("output_tokens") or DEFAULT_OUTPUT_TOKENS)
    stage_ms = aggregates.get("stage_ms", {})
    tokens = (aggregates.get("tokens") or {}).get("mean")
    decode_steps = tokens - 1 if tokens else None
    batch = float((aggregates.get("batch_size") or {}).get("mean") or 1.0)
    prefill, per_token = _mean(stage_ms, "prefill"), _mean(stage_ms, "decode_per_token")
    if prefill is None or per_token is None:
        return {"available": False, "reason": "no page was timed with at least two tokens"}
    good = ok_records(records)
    device = processor(good)
    gpu_ms = gpu_ms_per_page(good, output_tokens, per_token)
    host = {stage: _mean(stage_ms, stage) for stage in HOST_STAGES}
    batches = batch_times(good)
    wall_ms = _end_to_end_ms_per_page(
        aggregates.get("end_to_end"), batches, output_tokens, per_token
    )
    latency_s = [
        latency for b in batches for latency in b.page_latencies_s(output_tokens, per_token)
    ]
    price = settings.get("gpu_hour_price")
    energy_price = telemetry.get("energy_price_per_kwh")
    joules = page_share(_energy_per_page(telemetry, decode_steps, output_tokens), batch)
    return {
        "available": True,
        "processor": device,
        "output_tokens": output_tokens,
        "measured_tokens": tokens,
        "batch_size": batch,
        "prefill_ms": prefill,
        "decode_per_token_ms": per_token,
        "gpu_ms_per_page": gpu_ms,
        "host_ms_per_page": sum(value for value in host.values() if value is not None),
        "host_ms": host,
        "end_to_end_ms_per_page": wall_ms,
        "page_latency_ms": summarize(1000.0 * s for s in latency_s) if latency_s else None,
        "pages_per_gpu_day": None if wall_ms is None else MS_PER_DAY / wall_ms,
        "output_tokens_per_s_end_to_end": None
        if wall_ms is None
        else output_tokens / wall_ms * 1000.0,
        "output_tokens_per_s_gpu_side": output_tokens / gpu_ms * 1000.0,
        "gpu_hour_price": price,
        "gpu_cost_per_1000_pages": None
        if price is None or wall_ms is None
        else price * wall_ms / MS_PER_HOUR * 1e3,
        "joules_per_page": joules,
        "energy_cost_per_1000_pages": None
        if joules is None or energy_price is None
        else joules / JOULES_PER_KWH * energy_price * 1e3,
        "published": list(PUBLISHED),
        "assumptions": [
            _batching(batch),
            LENGTH_MIX,
            END_TO_END.format(device=device),
            LATENCY,
            _pricing(price, device),
            ENERGY,
        ],
    }

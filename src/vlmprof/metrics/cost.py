"""What a page costs: pages per GPU-day, output tokens per second and money per 1,000 pages,
at the output length a real page needs, from the measured stage times.

The timed runs generate `max_new_tokens` tokens; a real page needs about 1,000. A page of
N output tokens is costed as the measured mean prefill plus N - 1 decode steps at the
measured time per output token, shared by the pages of a batch (the run's batch size; one
page at a time unless batched). The host's image load and preprocessing are reported beside
it: pages per GPU-day assume they overlap the GPU work of other pages (worker processes);
the serial figure adds them. Each figure says what it assumes, and the published
DeepSeek-OCR throughput stands beside them for scale.
"""

from __future__ import annotations

from typing import Any

from vlmprof.metrics.aggregate import page_share
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
ASSUMPTIONS = (
    "a page of N output tokens = the measured mean prefill + (N - 1) x the measured mean time "
    "per output token; a longer output reads a longer KV cache each step, so this is a floor",
    "pages per GPU-day assume the host's load and preprocessing overlap the GPU work of "
    "other pages; the serial figure adds them",
    "energy per page: the measured prefill energy + (N - 1) x the measured decode energy per step",
)


def _mean(stage_ms: dict[str, Any], stage: str) -> float | None:
    stats = stage_ms.get(stage)
    return None if not stats or stats.get("mean") is None else float(stats["mean"])


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
    """What the figures assume about pages sharing the GPU."""
    if batch == 1:
        return "one page at a time (batch 1): the run's batch_size is 1"
    return (
        f"pages generated {batch:g} at a time: a batch's time is shared by its pages, and "
        "each page waits the whole batch's time"
    )


def cost_section(
    aggregates: dict[str, Any], telemetry: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """metrics.json's `cost`: per page of `settings["output_tokens"]` tokens (the config's
    `cost` section), its GPU time, host time, pages per GPU-day (host overlapped, and
    serial), output tokens/s, and with `gpu_hour_price` the GPU cost per 1,000 pages; with
    telemetry and `telemetry.energy_price_per_kwh` the energy cost too. `aggregates` is
    metrics.json's. {available: False, reason} when no page was timed."""
    output_tokens = int(settings.get("output_tokens") or DEFAULT_OUTPUT_TOKENS)
    stage_ms = aggregates.get("stage_ms", {})
    tokens = (aggregates.get("tokens") or {}).get("mean")
    decode_steps = tokens - 1 if tokens else None
    batch = float((aggregates.get("batch_size") or {}).get("mean") or 1.0)
    prefill, per_token = _mean(stage_ms, "prefill"), _mean(stage_ms, "decode_per_token")
    if prefill is None or per_token is None:
        return {"available": False, "reason": "no page was timed with at least two tokens"}
    batch_ms = prefill + (output_tokens - 1) * per_token
    gpu_ms = page_share(batch_ms, batch)
    host = {stage: _mean(stage_ms, stage) for stage in HOST_STAGES}
    host_ms = sum(value for value in host.values() if value is not None)
    price = settings.get("gpu_hour_price")
    energy_price = telemetry.get("energy_price_per_kwh")
    joules = _energy_per_page(telemetry, decode_steps, output_tokens)
    joules = page_share(joules, batch)
    return {
        "available": True,
        "output_tokens": output_tokens,
        "measured_tokens": tokens,
        "batch_size": batch,
        "prefill_ms": prefill,
        "decode_per_token_ms": per_token,
        "gpu_ms_per_page": gpu_ms,
        "host_ms_per_page": host_ms,
        "host_ms": host,
        "serial_ms_per_page": gpu_ms + host_ms,
        # What one page waits: its whole batch's GPU time, then its host time in series.
        "latency_ms_per_page": batch_ms + host_ms,
        "pages_per_gpu_day": MS_PER_DAY / gpu_ms,
        "pages_per_gpu_day_serial": MS_PER_DAY / (gpu_ms + host_ms),
        "output_tokens_per_s": output_tokens / gpu_ms * 1000.0,
        "gpu_hour_price": price,
        "gpu_cost_per_1000_pages": None if price is None else price * gpu_ms / MS_PER_HOUR * 1e3,
        "joules_per_page": joules,
        "energy_cost_per_1000_pages": None
        if joules is None or energy_price is None
        else joules / JOULES_PER_KWH * energy_price * 1e3,
        "published": list(PUBLISHED),
        "assumptions": [_batching(batch), *ASSUMPTIONS],
    }

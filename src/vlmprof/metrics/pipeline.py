"""The `pipeline` section of metrics.json: the host's side of a run against the GPU's, and
which of the two binds it.

Over each batch's first repeat: the GPU's time is the batch's prefill and decode; the wait
is how long the timing pass waited for the batch's pages (their load and preprocessing
inline, or what worker processes and the copy to the device had not finished); the host's
busy time is the pages' load and preprocessing, wherever they ran. The run is host-bound
when the GPU waited more than `HOST_BOUND_WAIT` of the time end to end (its end-to-end rate
below 90% of the GPU side's), else GPU-bound. `host_per_gpu` is the host's busy time per
worker over the GPU's time: above 1 the workers cannot keep up with the GPU however far
ahead they run. With `warmup_per_image` each batch's untimed reference generation also
runs while the workers work ahead, so the wait is what this pipeline saw, and
`host_per_gpu` what a loop without it would.
"""

from __future__ import annotations

from typing import Any

from vlmprof.records import batch_key

# The share of the time end to end the GPU may wait for its inputs before the run is
# called host-bound: the end-to-end rate is then below 90% of the GPU side's.
HOST_BOUND_WAIT = 0.10
METHOD = (
    "over each batch's first repeat: the GPU's time is its prefill + decode, the wait is the "
    "time the timing pass waited for its pages, the host's busy time their load + "
    f"preprocessing; host-bound when the wait is over {HOST_BOUND_WAIT:.0%} of GPU time + "
    "wait, else GPU-bound; host_per_gpu = host busy time / workers (1 inline) / GPU time"
)


def _first_repeats(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ok records of each batch's first repeat that kept their wait."""
    return [
        r
        for r in records
        if r.get("status", "ok") == "ok"
        and r.get("repeat") == 0
        and r.get("input_wait_ms") is not None
        and None not in (r.get("prefill_ms"), r.get("decode_ms"))
    ]


def _ratio(amount: float, whole: float) -> float | None:
    return amount / whole if whole > 0 else None


def pipeline_section(records: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """The host against the GPU over `records`, run with `workers` processes loading and
    preprocessing (0: inline); `batches` 0 and a reason where no record kept its wait."""
    pages = _first_repeats(records)
    if not pages:
        return {
            "batches": 0,
            "workers": workers,
            "method": METHOD,
            "reason": "no ok record kept the time the timing pass waited for its page",
        }
    batches = {batch_key(r): r for r in pages}
    gpu = sum(float(r["prefill_ms"]) + float(r["decode_ms"]) for r in batches.values())
    wait = sum(float(r["input_wait_ms"]) for r in pages)
    host = sum(float(r.get("load_ms") or 0.0) + float(r.get("preprocess_ms") or 0.0) for r in pages)
    wait_share = _ratio(wait, gpu + wait)
    host_per_gpu = _ratio(host / max(workers, 1), gpu)
    return {
        "batches": len(batches),
        "pages": len(pages),
        "workers": workers,
        "gpu_ms": gpu,
        "input_wait_ms": wait,
        "host_busy_ms": host,
        "gpu_ms_per_batch": gpu / len(batches),
        "input_wait_ms_per_batch": wait / len(batches),
        "host_busy_ms_per_page": host / len(pages),
        "wait_share": wait_share,
        "end_to_end_share": _ratio(gpu, gpu + wait),
        "host_per_gpu": host_per_gpu,
        "binding": "host" if wait_share is not None and wait_share > HOST_BOUND_WAIT else "GPU",
        "host_bound_wait": HOST_BOUND_WAIT,
        "method": METHOD,
        "reason": None,
    }

"""The `memory` section of metrics.json: each batch's KV cache, computed from the model's
dimensions and the batch's lengths, beside the peak memory the timing pass measured, and the
batches that did not fit.

A batch is left-padded to its longest prompt (`models.padded_batch`), so every page of it
holds as many cache positions as the longest: its prompt and the tokens generated after it.
The cache is then bytes per token per layer x layers x positions x pages. A batch whose run
ran out of the device's memory (`records.did_not_fit`) is a finding of a batch-size sweep:
it is listed with the cache it would have needed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vlmprof.flops.analytic import ModelDims, bytes_per_element, kv_bytes_per_token_per_layer
from vlmprof.records import batch_key, did_not_fit

METHOD = (
    "KV cache of a batch = 2 (K and V) x KV heads x head dim x bytes per element (bytes per "
    "token per layer) x decoder layers x positions x pages, where a left-padded batch holds, "
    "for every page, its longest prompt plus the tokens generated (max_new_tokens); the "
    "peak is torch's largest allocation during the timed run (CUDA only)"
)


def _batches(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each batch's records, every repeat (`records.batch_key`)."""
    batches: dict[tuple[Any, Any], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        batches[batch_key(record)].append(record)
    return list(batches.values())


def _peak(batch: list[dict[str, Any]]) -> int | None:
    """The largest peak allocation any of the batch's records measured (None on a CPU)."""
    peaks = [(r.get("peak_mem_bytes") or {}).get("run") for r in batch]
    known = [int(p) for p in peaks if p is not None]
    return max(known) if known else None


def batch_memory(
    batch: list[dict[str, Any]], per_token: int | None, layers: int | None, tokens: int
) -> dict[str, Any]:
    """One batch's pages, cache positions per page, KV cache (bytes; None without the
    model's dims), measured peak and whether it fit."""
    first = batch[0]
    lengths = [int(r["prefill_len"]) for r in batch if r.get("prefill_len") is not None]
    positions = max(lengths) + tokens if lengths else None
    pages = len({r["image_id"] for r in batch})
    kv = None
    if None not in (per_token, layers, positions):
        kv = int(per_token * layers * positions * pages)
    return {
        "shard": first.get("shard"),
        "batch": first.get("batch"),
        "pages": pages,
        "positions": positions,
        "kv_cache_bytes": kv,
        "peak_bytes": _peak(batch),
        "fit": not any(did_not_fit(r.get("error")) for r in batch),
    }


def memory_section(
    records: list[dict[str, Any]], dims: ModelDims | None, dtype: str, tokens: int
) -> dict[str, Any]:
    """Every batch's memory (`batch_memory`) and the run's extremes over the batches that
    fit, with the pages and batches that did not; `tokens` is each page's max_new_tokens."""
    per_token = layers = None
    reason = None
    if dims is None:
        reason = "the model has no dimensions to compute its KV cache from (a counted model)"
    else:
        per_token = kv_bytes_per_token_per_layer(dims, bytes_per_element(dtype))
        layers = dims.decoder.layers
    batches = [
        batch_memory(batch, per_token, layers, tokens) for batch in _batches(records)
    ]
    fitted = [b for b in batches if b["fit"]]
    kv = [b["kv_cache_bytes"] for b in fitted if b["kv_cache_bytes"] is not None]
    peaks = [b["peak_bytes"] for b in fitted if b["peak_bytes"] is not None]
    return {
        "dtype": dtype,
        "kv_bytes_per_token_per_layer": per_token,
        "layers": layers,
        "batches": batches,
        "kv_cache_bytes_max": max(kv) if kv else None,
        "peak_bytes_max": max(peaks) if peaks else None,
        "batches_did_not_fit": len(batches) - len(fitted),
        "pages_did_not_fit": sum(b["pages"] for b in batches if not b["fit"]),
        "method": METHOD,
        "reason": reason,
    }

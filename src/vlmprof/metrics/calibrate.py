"""Calibrate achievable peaks on this machine: a large matmul and a large device copy.

The datasheet peak is rarely reachable; a peak measured here with the same dtype gives a
second, honest MFU/MBU denominator. Results are cached per machine: the device (GPU UUID,
or host name on a CPU), its driver, the torch and CUDA versions and the dtype; a result
says whether it was measured now or cached, and how old it is.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from vlmprof.atomic import write_json_atomic
from vlmprof.device import resolve_dtype
from vlmprof.metrics.environment import cpu_model, nvml_facts
from vlmprof.placement import Placement

log = logging.getLogger(__name__)

# Matmul side and copy size per device kind: big enough to saturate, small enough that the
# whole calibration takes a few seconds (CPU sizes keep it under about two seconds).
_MATMUL_SIZE = {"cuda": 8192, "cpu": 1024}
_COPY_BYTES = {"cuda": 1 << 30, "cpu": 64 << 20}
_WARMUP = {"cuda": 3, "cpu": 1}
_ITERS = {"cuda": 10, "cpu": 4}


def _device_kind_and_name(placement: Placement) -> tuple[torch.device, str, str]:
    """The torch device, its kind ("cuda" or "cpu") and a human-readable model name."""
    if placement.on_gpu:
        return torch.device(placement.device), "cuda", placement.gpu_name or "cuda"
    return torch.device(placement.device), "cpu", cpu_model() or "cpu"


def _best_seconds(kind: str, work: Callable[[], object], warmup: int, iters: int) -> float:
    """Shortest time of `iters` runs of `work` after `warmup` runs (CUDA events on GPU)."""
    for _ in range(warmup):
        work()
    times = []
    if kind == "cuda":
        torch.cuda.synchronize()
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            work()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000.0)
    else:
        for _ in range(iters):
            start_s = time.perf_counter()
            work()
            times.append(time.perf_counter() - start_s)
    return min(times)


def _matmul_seconds(dev: torch.device, kind: str, n: int, dtype: torch.dtype) -> float:
    """Best time of one n x n by n x n matmul."""
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    out = torch.empty(n, n, device=dev, dtype=dtype)
    return _best_seconds(kind, lambda: torch.matmul(a, b, out=out), _WARMUP[kind], _ITERS[kind])


def _copy_seconds(dev: torch.device, kind: str, nbytes: int) -> float:
    """Best time of one copy of `nbytes` bytes between two buffers on the device."""
    src = torch.ones(nbytes, device=dev, dtype=torch.uint8)
    dst = torch.empty_like(src)
    return _best_seconds(kind, lambda: dst.copy_(src), _WARMUP[kind], _ITERS[kind])


def measure_peaks(placement: Placement, size: int | None = None) -> dict[str, Any]:
    """Run the matmul and copy benchmarks at `placement` now and return TFLOP/s and TB/s
    achieved."""
    dev, kind, name = _device_kind_and_name(placement)
    dtype = placement.dtype
    torch_dtype = resolve_dtype(dtype, placement.device)
    n = size or _MATMUL_SIZE[kind]
    copy_bytes = _COPY_BYTES[kind]
    matmul_s = _matmul_seconds(dev, kind, n, torch_dtype)
    copy_s = _copy_seconds(dev, kind, copy_bytes)
    timer = "CUDA events" if kind == "cuda" else "perf_counter"
    return {
        "tflops": 2.0 * n**3 / matmul_s / 1e12,
        "tbps": 2.0 * copy_bytes / copy_s / 1e12,
        "device": str(dev),
        "device_name": name,
        "dtype": dtype,
        "matmul_size": n,
        "copy_bytes": copy_bytes,
        "method": (
            f"best of {_ITERS[kind]} {n}x{n} {dtype} matmuls (2*n^3 FLOPs) and best of "
            f"{_ITERS[kind]} {copy_bytes}-byte device copies (read + write bytes), "
            f"after {_WARMUP[kind]} warmup runs, timed with {timer}"
        ),
    }


def machine_key(placement: Placement) -> dict[str, Any]:
    """What a calibration depends on: device model and identity (GPU UUID, or host name on a
    CPU), driver, torch and CUDA versions (the CUDA one as the placement records it), and
    dtype. A cached result is reused only when all of them match."""
    _, kind, name = _device_kind_and_name(placement)
    if kind == "cuda":
        facts = nvml_facts(placement)
        identity = facts["gpu_uuid"] or placement.gpu_uuid
        driver = facts["driver"]
    else:
        identity, driver = platform.node() or None, None
    return {
        "device_name": name,
        "device_id": identity,
        "driver": driver,
        "torch": torch.__version__,
        "cuda": placement.cuda_version,
        "dtype": placement.dtype,
    }


def _read_cache(cache_path: Path) -> list[dict[str, Any]]:
    """Cached calibrations, each with its machine key; empty when missing, unreadable or in
    the old per-device-name format (which cannot tell hosts and drivers apart)."""
    if not cache_path.exists():
        return []
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        log.warning("%s: unreadable calibration cache (%s); recalibrating", cache_path, error)
        return []
    entries = cache.get("entries") if isinstance(cache, dict) else None
    if not isinstance(entries, list):
        log.warning("%s: calibration cache without a machine key; recalibrating", cache_path)
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


def _age_s(entry: dict[str, Any], now: datetime) -> float | None:
    """Seconds since a cached entry was measured, or None when its time is unreadable."""
    try:
        return (now - datetime.fromisoformat(entry["measured_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def calibrate_peaks(
    placement: Placement,
    cache_path: Path | None,
    size: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Calibrated peaks at `placement` (device and dtype), reused from `cache_path` when it
    holds a result for this machine key (`machine_key`) and `size`, unless `force`
    re-measures.

    The result says `source: measured` or `cached`, when it was measured and its `age_s`;
    a new measurement replaces this machine's entry in the cache.
    """
    machine = machine_key(placement)
    entries = _read_cache(Path(cache_path)) if cache_path is not None else []
    now = datetime.now(UTC)
    for entry in entries:
        age_s = _age_s(entry, now)
        if (
            not force
            and entry.get("machine") == machine
            and (size is None or entry.get("matmul_size") == size)
            and age_s is not None
        ):
            return entry | {"source": "cached", "age_s": age_s}
    result = measure_peaks(placement, size) | {
        "machine": machine,
        "measured_at": datetime.now(UTC).isoformat(),
    }
    if cache_path is not None:
        others = [entry for entry in entries if entry.get("machine") != machine]
        write_json_atomic(cache_path, {"entries": [*others, result]})
    return result | {"source": "measured", "age_s": 0.0}

"""Calibrate achievable peaks on this machine: a large matmul and a large device copy.

The datasheet peak is rarely reachable; a peak measured here with the same dtype gives a
second, honest MFU/MBU denominator. Results are cached per device name and dtype.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vlmprof.atomic import write_json_atomic
from vlmprof.device import dtype_name, resolve_device, resolve_dtype
from vlmprof.metrics.environment import cpu_model

log = logging.getLogger(__name__)

# Matmul side and copy size per device kind: big enough to saturate, small enough that the
# whole calibration takes a few seconds (CPU sizes keep it under about two seconds).
_MATMUL_SIZE = {"cuda": 8192, "cpu": 1024}
_COPY_BYTES = {"cuda": 1 << 30, "cpu": 64 << 20}
_WARMUP = {"cuda": 3, "cpu": 1}
_ITERS = {"cuda": 10, "cpu": 4}


def _device_kind_and_name(device: str) -> tuple[torch.device, str, str]:
    """The torch device, its kind ("cuda" or "cpu") and a human-readable model name."""
    dev = torch.device(resolve_device(device))
    if dev.type == "cuda":
        dev = torch.device("cuda", dev.index if dev.index is not None else 0)
        return dev, "cuda", torch.cuda.get_device_name(dev)
    return dev, "cpu", cpu_model() or "cpu"


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


def measure_peaks(device: str, dtype: str, size: int | None = None) -> dict[str, Any]:
    """Run the matmul and copy benchmarks now and return TFLOP/s and TB/s achieved."""
    dev, kind, name = _device_kind_and_name(device)
    torch_dtype = resolve_dtype(dtype, kind)
    dtype = dtype_name(torch_dtype)
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


def _read_cache(cache_path: Path) -> dict[str, Any]:
    """Cached calibrations keyed by device name and dtype; empty when missing or unreadable."""
    if not cache_path.exists():
        return {}
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        log.warning("%s: unreadable calibration cache (%s); recalibrating", cache_path, error)
        return {}
    return cache if isinstance(cache, dict) else {}


def calibrate_peaks(
    device: str, dtype: str, cache_path: Path | None, size: int | None = None
) -> dict[str, Any]:
    """Calibrated peaks for `device` and `dtype`, reused from `cache_path` when present.

    The cache is keyed by device model name and dtype, so a pipeline rerun on the same
    machine skips the benchmark; a requested `size` other than the cached one reruns it.
    """
    _, kind, name = _device_kind_and_name(device)
    dtype = dtype_name(resolve_dtype(dtype, kind))
    key = f"{name}|{dtype}"
    cache = _read_cache(Path(cache_path)) if cache_path is not None else {}
    cached = cache.get(key)
    if cached is not None and (size is None or cached.get("matmul_size") == size):
        return cached
    result = measure_peaks(device, dtype, size)
    if cache_path is not None:
        write_json_atomic(cache_path, cache | {key: result})
    return result

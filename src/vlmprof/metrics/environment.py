"""Describe the machine and software a run used, so results can be compared and reproduced.

A fact that cannot be read is None, and GPU facts say why NVML was not available (no GPU,
no driver, CPU run); only a malformed VLMPROF_SOURCE_* variable or source stamp stops it,
in one line naming it (`vlmprof.provenance`). Torch-free: the CUDA and cuDNN versions are
the timing job's, from its placement, not the aggregating process's.
"""

from __future__ import annotations

import importlib.metadata
import platform
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vlmprof.placement import Placement
from vlmprof.provenance import source_state
from vlmprof.records import record_placement
from vlmprof.runtime.nvml import nvml_handle
from vlmprof.runtime.nvml_sample import nvml_value

PACKAGES: tuple[str, ...] = ("vlmprof", "torch", "transformers", "snakemake", "pandas", "numpy")
NO_PLACEMENT = "no run record names its placement; rerun the profile_shard jobs to record it"
_GPU_KEYS: tuple[str, ...] = (
    "gpu_name",
    "gpu_uuid",
    "driver",
    "sm_clock_mhz",
    "sm_clock_max_mhz",
    "mem_clock_mhz",
    "mem_clock_max_mhz",
    "power_limit_mw",
    "memory_total_bytes",
)


def cpu_model() -> str | None:
    """The CPU model name from /proc/cpuinfo, else what `platform` knows, else None."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers (None if absent)."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def nvml_facts(placement: Placement) -> dict[str, Any]:
    """GPU name, driver, clocks, power limit and memory of the placement's GPU via NVML."""
    facts: dict[str, Any] = dict.fromkeys(_GPU_KEYS)
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as error:  # any failure means "no NVML here"
        return facts | {"nvml": f"unavailable: {error}"}
    try:
        handle = nvml_handle(pynvml, placement)
        clock = pynvml.nvmlDeviceGetClockInfo
        max_clock = pynvml.nvmlDeviceGetMaxClockInfo
        facts.update(
            gpu_name=nvml_value(lambda: pynvml.nvmlDeviceGetName(handle)),
            gpu_uuid=nvml_value(lambda: pynvml.nvmlDeviceGetUUID(handle)),
            driver=nvml_value(pynvml.nvmlSystemGetDriverVersion),
            sm_clock_mhz=nvml_value(lambda: clock(handle, pynvml.NVML_CLOCK_SM)),
            sm_clock_max_mhz=nvml_value(lambda: max_clock(handle, pynvml.NVML_CLOCK_SM)),
            mem_clock_mhz=nvml_value(lambda: clock(handle, pynvml.NVML_CLOCK_MEM)),
            mem_clock_max_mhz=nvml_value(lambda: max_clock(handle, pynvml.NVML_CLOCK_MEM)),
            power_limit_mw=nvml_value(lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle)),
            memory_total_bytes=nvml_value(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).total),
        )
        facts["nvml"] = "ok"
    except Exception as error:  # metadata never fails a run
        facts["nvml"] = f"unavailable: {error}"
    finally:
        pynvml.nvmlShutdown()
    return facts


def _median(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def shard_environment(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per shard (and placement, should a shard name two), in record order: where
    it ran and the median SM and memory clocks its runs' telemetry saw (None without)."""
    runs: dict[tuple[Any, Placement], list[dict[str, Any]]] = {}
    for record in records:
        placement = record_placement(record)
        if placement is not None:
            runs.setdefault((record.get("shard"), placement), []).append(record)
    entries = []
    for (shard, placement), group in runs.items():
        telemetry = [r["telemetry"] for r in group if r.get("telemetry")]
        entries.append(
            {
                "shard": shard,
                "device": placement.device,
                "gpu_index": placement.gpu_index,
                "gpu_uuid": placement.gpu_uuid,
                "gpu_name": placement.gpu_name,
                "sm_clock_median_mhz": _median(t.get("sm_clock_median_mhz") for t in telemetry),
                "mem_clock_median_mhz": _median(t.get("mem_clock_median_mhz") for t in telemetry),
                "telemetry_runs": len(telemetry),
            }
        )
    return entries


def collect_environment(placement: Placement | None, device_requested: str) -> dict[str, Any]:
    """Software versions, source commit (`vlmprof.provenance`), CPU and, for a GPU run, the
    GPU facts of the run's placement (the first shard's, read from its run records: not
    whatever GPU 0 of the aggregating process is), and the CUDA and cuDNN versions its
    torch ran with. NVML finds that GPU by its UUID."""
    env: dict[str, Any] = {
        **source_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "packages": package_versions(),
        "cuda_version": placement.cuda_version if placement is not None else None,
        "cudnn_version": placement.cudnn_version if placement is not None else None,
        "device_requested": device_requested,
        "device_used": placement.device if placement is not None else None,
        "device_name": _device_name(placement),
        "device_error": None if placement is not None else NO_PLACEMENT,
    }
    if placement is not None and placement.on_gpu:
        env |= nvml_facts(placement)
    else:
        reason = NO_PLACEMENT if placement is None else f"device is {placement.device}, not CUDA"
        env |= dict.fromkeys(_GPU_KEYS) | {"nvml": f"unavailable: {reason}"}
    return env


def _device_name(placement: Placement | None) -> str | None:
    """The model name peaks are looked up by: the GPU's name, or "cpu"."""
    if placement is None:
        return None
    return placement.gpu_name if placement.on_gpu else "cpu"

"""Describe the machine and software a run used, so results can be compared and reproduced.

A fact that cannot be read is None, and GPU facts say why NVML was not available (no GPU,
no driver, CPU run); only a malformed VLMPROF_SOURCE_* variable or source stamp stops it,
in one line naming it (`vlmprof.provenance`).
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from vlmprof.device import resolve_device
from vlmprof.device_choice import DeviceUnavailableError
from vlmprof.provenance import source_state
from vlmprof.runtime.nvml import nvml_handle
from vlmprof.runtime.nvml_sample import nvml_value

PACKAGES: tuple[str, ...] = ("vlmprof", "torch", "transformers", "snakemake", "pandas", "numpy")
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


def nvml_facts(device: torch.device) -> dict[str, Any]:
    """GPU name, driver, clocks, power limit and memory of a CUDA device via NVML."""
    facts: dict[str, Any] = dict.fromkeys(_GPU_KEYS)
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as error:  # any failure means "no NVML here"
        return facts | {"nvml": f"unavailable: {error}"}
    try:
        handle = nvml_handle(pynvml, device)
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


def _device_used(device: str) -> tuple[torch.device | None, str | None]:
    """The torch device a request maps to, or None and why it cannot be used."""
    try:
        dev = torch.device(resolve_device(device))
    except (ValueError, DeviceUnavailableError) as error:
        return None, str(error)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", 0)
    return dev, None


def _device_name(dev: torch.device | None) -> str | None:
    """The model name peaks are looked up by: the CUDA device's name, or "cpu"."""
    if dev is None:
        return None
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type


def collect_environment(device: str) -> dict[str, Any]:
    """Software versions, source commit (`vlmprof.provenance`), CPU and (for CUDA runs) GPU
    facts of this machine."""
    dev, device_error = _device_used(device)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    env: dict[str, Any] = {
        **source_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "packages": package_versions(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": cudnn,
        "device_requested": device,
        "device_used": str(dev) if dev is not None else None,
        "device_name": _device_name(dev),
        "device_error": device_error,
    }
    if dev is not None and dev.type == "cuda":
        env |= nvml_facts(dev)
    else:
        reason = device_error or f"device is {device}, not CUDA"
        env |= dict.fromkeys(_GPU_KEYS) | {"nvml": f"unavailable: {reason}"}
    return env

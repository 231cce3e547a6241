"""NVML's names for torch CUDA devices, for provenance, the telemetry poller and benchmarks."""

from __future__ import annotations

from typing import Any

import torch

from vlmprof.runtime.nvml_sample import device_handle


def device_uuid(device: torch.device) -> str:
    """NVML's name of a torch CUDA device: its UUID (robust to CUDA_VISIBLE_DEVICES), or its
    index as text where torch knows no UUID."""
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is None:
        return str(device.index or 0)
    text = str(uuid)
    return text if text.startswith("GPU-") else f"GPU-{text}"


def nvml_handle(pynvml: Any, device: torch.device) -> Any:
    """The NVML handle of a torch CUDA device."""
    return device_handle(pynvml, device_uuid(device))

"""The NVML handle of a torch CUDA device, for provenance and benchmarks."""

from __future__ import annotations

from typing import Any

import torch


def nvml_handle(pynvml: Any, device: torch.device) -> Any:
    """The NVML handle of a torch CUDA device, by UUID (robust to CUDA_VISIBLE_DEVICES)."""
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is not None:
        text = str(uuid)
        return pynvml.nvmlDeviceGetHandleByUUID(text if text.startswith("GPU-") else f"GPU-{text}")
    return pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)

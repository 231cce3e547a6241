"""NVML's names for a job's GPU, for provenance, the telemetry poller and benchmarks.

Torch-free: the GPU is named by the job's placement (`vlmprof.placement`), resolved once
where the job claimed it.
"""

from __future__ import annotations

from typing import Any

from vlmprof.placement import Placement
from vlmprof.runtime.nvml_sample import device_handle


def nvml_device(placement: Placement) -> str:
    """NVML's name of the placement's GPU: its UUID (robust to CUDA_VISIBLE_DEVICES), or its
    index as text where torch read no UUID."""
    if placement.gpu_index is None:
        raise ValueError(f"placement on {placement.device} names no GPU for NVML")
    return placement.gpu_uuid or str(placement.gpu_index)


def nvml_handle(pynvml: Any, placement: Placement) -> Any:
    """The NVML handle of the placement's GPU."""
    return device_handle(pynvml, nvml_device(placement))

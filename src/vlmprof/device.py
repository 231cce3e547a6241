"""Device and dtype resolution: `auto | cpu | cuda[:N]` and `auto | bfloat16 | float32`,
and a job's placement on the device it claimed.

It imports only vlmprof's ground, so every layer (models, runtime, metrics) resolves a
device and dtype the same way.
"""

from __future__ import annotations

import torch

from vlmprof.device_choice import choose_device, resolved_dtype_name
from vlmprof.placement import Placement


def resolve_device(requested: str) -> str:
    """`auto` picks CUDA when present, else CPU; `cuda[:N]` without that GPU is an error.

    Judged with torch's view of CUDA, on the machine that runs the job.
    """
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return choose_device(requested, visible)


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """The torch dtype a `dtype:` request means on `device` (`resolved_dtype_name`)."""
    return getattr(torch, resolved_dtype_name(name, device))


def resolve_placement(device: str, dtype: str) -> Placement:
    """The placement of a job on its claimed `device` (`cpu`, `cuda` or `cuda:N`) in `dtype`
    (`auto` or a name).

    A bare `cuda` is the current CUDA device: the GPU the job claimed
    (`vlmprof.runtime.gpu_slot` makes it current) or, where it claimed none, CUDA's default.
    The GPU's UUID is the one NVML knows it by ("GPU-...", None where torch reads none).
    """
    name = resolved_dtype_name(dtype, device)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    libraries = {"cuda_version": torch.version.cuda, "cudnn_version": cudnn}
    if not device.startswith("cuda"):
        return Placement(device, name, **libraries)
    index = torch.device(device).index
    if index is None:
        index = torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    text = None if uuid is None else str(uuid)
    if text is not None and not text.startswith("GPU-"):
        text = f"GPU-{text}"
    gpu_name = torch.cuda.get_device_name(index)
    return Placement(f"cuda:{index}", name, index, text, gpu_name, **libraries)

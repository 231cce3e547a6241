"""Device and dtype resolution: `auto | cpu | cuda[:N]` and `auto | bfloat16 | float32`.

It imports nothing else of vlmprof, so every layer (models, runtime, metrics, the
workflow's planning) resolves a device and dtype the same way.
"""

from __future__ import annotations

import torch

from vlmprof.device_choice import choose_device

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def resolve_device(requested: str) -> str:
    """`auto` picks CUDA when present, else CPU; `cuda[:N]` without that GPU is an error.

    Judged with torch's view of CUDA, on the machine that runs the job.
    """
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return choose_device(requested, visible)


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """`auto` is bf16 on CUDA and fp32 on CPU, as the reference runs."""
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if name not in DTYPES:
        raise ValueError(f"dtype: {name!r} is not allowed; use auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` -> `bfloat16`."""
    return str(dtype).removeprefix("torch.")

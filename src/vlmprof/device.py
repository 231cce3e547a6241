"""Device and dtype resolution: `auto | cpu | cuda[:N]` and `auto | bfloat16 | float32`.

It imports nothing else of vlmprof, so every layer (models, runtime, metrics, the
workflow's planning) resolves a device and dtype the same way.
"""

from __future__ import annotations

import re

import torch

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class DeviceUnavailableError(RuntimeError):
    """The configured device does not exist on this machine."""


def resolve_device(requested: str) -> str:
    """`auto` picks CUDA when present, else CPU; `cuda[:N]` without that GPU is an error."""
    if not _DEVICE.fullmatch(requested):
        raise ValueError(f"device: {requested!r} is not allowed; use auto, cpu or cuda[:N]")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device: {requested} was requested but no CUDA GPU is visible; "
                "set device: auto or cpu in config/config.yaml"
            )
        if index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device: {requested} was requested but only {torch.cuda.device_count()} "
                "GPU(s) are visible"
            )
    return requested


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

"""Which device a `device:` request (`auto | cpu | cuda[:N]`) means, given the visible GPUs.

Torch-free, so the workflow can judge the request where it plans the jobs (GPUs counted by
NVML) without importing torch; each job judges it again on its node, with torch's count
(`vlmprof.device.resolve_device`).
"""

from __future__ import annotations

import os
import re

import pynvml

DEVICE_REQUEST = re.compile(r"auto|cpu|cuda(:\d+)?")
DTYPE_NAMES = ("bfloat16", "float16", "float32")
# How CUDA names a device in CUDA_VISIBLE_DEVICES besides its index.
DEVICE_UUID = re.compile(r"(GPU|MIG)-\S+")


def resolved_dtype_name(name: str, device: str) -> str:
    """The dtype a `dtype:` request means on `device`: `auto` is bf16 on CUDA and fp32 on
    CPU, as the reference runs."""
    if name == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype: {name!r} is not allowed; use auto, {', '.join(DTYPE_NAMES)}")
    return name


class DeviceUnavailableError(RuntimeError):
    """The configured device does not exist on this machine."""


def choose_device(requested: str, visible_gpus: int) -> str:
    """`auto` picks CUDA when a GPU is visible, else CPU; `cuda[:N]` without that GPU is an
    error naming the key."""
    if not DEVICE_REQUEST.fullmatch(requested):
        raise ValueError(f"device: {requested!r} is not allowed; use auto, cpu or cuda[:N]")
    if requested == "auto":
        return "cuda" if visible_gpus else "cpu"
    if requested.startswith("cuda"):
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if not visible_gpus:
            raise DeviceUnavailableError(
                f"device: {requested} was requested but no CUDA GPU is visible; "
                "set device: auto or cpu"
            )
        if index >= visible_gpus:
            raise DeviceUnavailableError(
                f"device: {requested} was requested but only {visible_gpus} GPU(s) are visible"
            )
    return requested


def visible_count(installed: int, cuda_visible_devices: str | None) -> int:
    """GPUs a CUDA process sees of the `installed` ones under CUDA_VISIBLE_DEVICES.

    As CUDA reads the list: entries in order, up to the first that names no GPU (an index
    out of range, a repeat, or anything else, such as an empty list or -1).
    """
    if cuda_visible_devices is None:
        return installed
    seen: set[str] = set()
    for entry in (item.strip() for item in cuda_visible_devices.split(",")):
        named = (entry.isdigit() and int(entry) < installed) or DEVICE_UUID.fullmatch(entry)
        if not named or entry in seen:
            break
        seen.add(entry)
    return len(seen)


def nvml_visible_gpus() -> int:
    """GPUs this process would see, counted by NVML without torch; none without a driver."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return 0
    try:
        installed = pynvml.nvmlDeviceGetCount()
    finally:
        pynvml.nvmlShutdown()
    return visible_count(installed, os.environ.get("CUDA_VISIBLE_DEVICES"))

"""Judging `device:` without torch (where the jobs are planned) as torch would on the node."""

from __future__ import annotations

import re

import pytest
import torch

from vlmprof.device import resolve_device
from vlmprof.device_choice import (
    DeviceUnavailableError,
    choose_device,
    nvml_visible_gpus,
    visible_count,
)


@pytest.mark.parametrize(
    ("requested", "gpus", "device"),
    [
        ("auto", 0, "cpu"),
        ("auto", 2, "cuda"),
        ("cpu", 2, "cpu"),
        ("cuda", 1, "cuda"),
        ("cuda:1", 2, "cuda:1"),
    ],
)
def test_a_request_names_a_visible_device(requested: str, gpus: int, device: str):
    assert choose_device(requested, gpus) == device


@pytest.mark.parametrize(
    ("requested", "gpus", "message"),
    [
        ("cuda", 0, "device: cuda was requested but no CUDA GPU is visible; set device: auto"),
        ("cuda:2", 2, "device: cuda:2 was requested but only 2 GPU(s) are visible"),
    ],
)
def test_a_missing_gpu_is_named_with_what_to_do(requested: str, gpus: int, message: str):
    with pytest.raises(DeviceUnavailableError, match=re.escape(message)):
        choose_device(requested, gpus)


@pytest.mark.parametrize("requested", ["gpu", "cuda:x", "CPU", "cuda:0\n"])
def test_an_unknown_request_names_the_key_and_the_choices(requested: str):
    with pytest.raises(ValueError, match="device: .* is not allowed; use auto, cpu or cuda"):
        choose_device(requested, 1)


@pytest.mark.parametrize(
    ("installed", "listed", "visible"),
    [
        (4, None, 4),
        (4, "2,0", 2),
        (4, "1,7,2", 1),  # CUDA stops at the first entry that names no GPU
        (4, "1,1", 1),
        (4, "", 0),
        (4, "-1", 0),
        (2, "GPU-8f2e, MIG-1a", 2),
        (0, None, 0),
    ],
)
def test_cuda_visible_devices_limits_the_gpus_a_job_sees(
    installed: int, listed: str | None, visible: int
):
    assert visible_count(installed, listed) == visible


def test_nvml_sees_the_gpus_torch_sees():
    # Without a driver both see none; on a GPU host, the same GPUs (CUDA_VISIBLE_DEVICES too).
    assert nvml_visible_gpus() == torch.cuda.device_count()


def test_the_job_judges_the_request_with_torch_as_planning_does_with_nvml():
    for requested in ("auto", "cpu"):
        assert resolve_device(requested) == choose_device(requested, nvml_visible_gpus())

"""A job's placement: resolved on the device it claimed, bare `cuda` as the claimed GPU,
read back from a run record, and how NVML names its GPU."""

from __future__ import annotations

import json

import pytest
import torch

from vlmprof.device import resolve_placement
from vlmprof.placement import Placement
from vlmprof.records import RunRecord, record_placement
from vlmprof.runtime.nvml import nvml_device

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_a_cpu_placement_names_no_gpu_and_the_cuda_torch_has():
    placement = resolve_placement("cpu", "auto")
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    assert placement == Placement(
        "cpu", "float32", cuda_version=torch.version.cuda, cudnn_version=cudnn
    )
    assert not placement.on_gpu
    assert resolve_placement("cpu", "bfloat16").dtype == "bfloat16"


def test_an_unknown_dtype_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="dtype: 'int8' is not allowed"):
        resolve_placement("cpu", "int8")


@needs_gpu
def test_bare_cuda_is_the_current_gpu_by_index():
    current = torch.cuda.current_device()
    placement = resolve_placement("cuda", "auto")
    assert placement.device == f"cuda:{current}" and placement.gpu_index == current
    assert placement.dtype == "bfloat16"
    assert placement.gpu_uuid.startswith("GPU-")
    assert placement.gpu_name == torch.cuda.get_device_name(current)
    assert resolve_placement(f"cuda:{current}", "auto") == placement


def test_a_record_keeps_its_placement_through_json():
    placement = Placement("cuda:1", "bfloat16", 1, "GPU-bbbb", "NVIDIA H200")
    record = RunRecord(run_id="r", image_id="p", repeat=0, placement=placement)
    read = json.loads(json.dumps(record.to_dict()))
    assert read["placement"]["gpu_uuid"] == "GPU-bbbb"
    assert record_placement(read) == placement
    assert record_placement(RunRecord(run_id="r", image_id="p", repeat=0).to_dict()) is None


def test_a_placement_reads_as_its_record_does():
    """Device and dtype required, every key of its kind; one recorded before the CUDA and
    cuDNN versions were reads them as None."""
    with pytest.raises(ValueError, match="placement: dtype: missing"):
        Placement.from_dict({"device": "cuda:0", "gpu_index": 0})
    with pytest.raises(ValueError, match="placement: gpu_index: expected an integer"):
        Placement.from_dict({"device": "cuda:0", "dtype": "bfloat16", "gpu_index": "0"})
    older = {"device": "cuda:0", "dtype": "bfloat16", "gpu_index": 0, "gpu_uuid": "GPU-a"}
    placement = Placement.from_dict(older | {"gpu_name": "NVIDIA H100 80GB HBM3"})
    assert placement.gpu_index == 0 and placement.cuda_version is None
    assert placement.cudnn_version is None


def test_nvml_finds_a_gpu_by_uuid_else_by_index_and_refuses_a_cpu():
    assert nvml_device(Placement("cuda:1", "bfloat16", 1, "GPU-bbbb", "H200")) == "GPU-bbbb"
    assert nvml_device(Placement("cuda:1", "bfloat16", 1, None, "H200")) == "1"
    with pytest.raises(ValueError, match="names no GPU"):
        nvml_device(Placement("cpu", "float32"))

"""Peak calibration: a real (small) benchmark run, its cache and its reuse."""

import json

import pytest
import torch

from vlmprof.metrics.calibrate import calibrate_peaks

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
    ),
]


@pytest.mark.parametrize("device", DEVICES)
def test_calibration_measures_and_caches(tmp_path, device):
    cache = tmp_path / "calibration.json"
    result = calibrate_peaks(device, "float32", cache, size=256)
    assert result["tflops"] > 0 and result["tbps"] > 0
    assert result["matmul_size"] == 256
    assert result["copy_bytes"] > 0
    assert result["dtype"] == "float32"
    assert "matmul" in result["method"] and "copies" in result["method"]
    cached = json.loads(cache.read_text())
    assert list(cached.values()) == [result]
    assert list(cached)[0].endswith("|float32")


def test_cached_result_is_reused(tmp_path):
    cache = tmp_path / "calibration.json"
    first = calibrate_peaks("cpu", "float32", cache, size=256)
    key = f"{first['device_name']}|float32"
    # A marker value the benchmark cannot produce shows the cache was read, not rerun.
    cache.write_text(json.dumps({key: first | {"tflops": -1.0}}))
    assert calibrate_peaks("cpu", "float32", cache)["tflops"] == -1.0
    assert calibrate_peaks("cpu", "float32", cache, size=256)["tflops"] == -1.0
    rerun = calibrate_peaks("cpu", "float32", cache, size=128)
    assert rerun["tflops"] > 0 and rerun["matmul_size"] == 128


def test_dtypes_are_cached_apart(tmp_path):
    cache = tmp_path / "calibration.json"
    calibrate_peaks("cpu", "float32", cache, size=128)
    calibrate_peaks("cpu", "bfloat16", cache, size=128)
    assert sorted(key.split("|")[1] for key in json.loads(cache.read_text())) == [
        "bfloat16",
        "float32",
    ]


def test_unreadable_cache_is_recalibrated(tmp_path):
    cache = tmp_path / "calibration.json"
    cache.write_text("{not json")
    assert calibrate_peaks("cpu", "float32", cache, size=128)["tflops"] > 0
    assert json.loads(cache.read_text())


def test_without_cache_path_nothing_is_written(tmp_path):
    assert calibrate_peaks("cpu", "float32", None, size=128)["tflops"] > 0
    assert list(tmp_path.iterdir()) == []


def test_unknown_dtype_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        calibrate_peaks("cpu", "int8", tmp_path / "c.json")

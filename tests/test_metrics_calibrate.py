"""Peak calibration: a real (small) benchmark run, its cache keyed by machine, and its reuse."""

import json
import platform
from datetime import UTC, datetime, timedelta

import pytest
import torch

from vlmprof.device import resolve_placement
from vlmprof.metrics.calibrate import calibrate_peaks, machine_key

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
    ),
]


def _entries(cache):
    return json.loads(cache.read_text())["entries"]


def _rewrite(cache, **changes):
    """The cache with its one entry changed; tflops -1 marks it, as no benchmark gives that."""
    (entry,) = _entries(cache)
    entry = entry | {"tflops": -1.0} | changes
    cache.write_text(json.dumps({"entries": [entry]}))
    return entry


CPU = resolve_placement("cpu", "float32")


@pytest.mark.parametrize("device", DEVICES)
def test_calibration_measures_and_caches(tmp_path, device):
    cache = tmp_path / "calibration.json"
    result = calibrate_peaks(resolve_placement(device, "float32"), cache, size=256)
    assert result["tflops"] > 0 and result["tbps"] > 0
    assert result["matmul_size"] == 256
    assert result["copy_bytes"] > 0
    assert result["dtype"] == "float32"
    assert "matmul" in result["method"] and "copies" in result["method"]
    assert result["source"] == "measured" and result["age_s"] == 0.0
    (entry,) = _entries(cache)
    assert entry == {k: v for k, v in result.items() if k not in ("source", "age_s")}
    assert entry["machine"] == machine_key(resolve_placement(device, "float32"))


@pytest.mark.parametrize("device", DEVICES)
def test_cache_key_names_device_driver_torch_and_cuda(device):
    key = machine_key(resolve_placement(device, "float32"))
    assert key["torch"] == torch.__version__ and key["cuda"] == torch.version.cuda
    assert key["dtype"] == "float32"
    if device == "cpu":
        assert key["device_id"] == platform.node() and key["driver"] is None
    else:
        assert key["device_id"].startswith("GPU-") and key["driver"]


def test_cached_result_is_reused_and_says_how_old(tmp_path):
    cache = tmp_path / "calibration.json"
    calibrate_peaks(CPU, cache, size=256)
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    _rewrite(cache, measured_at=two_hours_ago)
    reused = calibrate_peaks(CPU, cache)
    assert reused["tflops"] == -1.0 and reused["source"] == "cached"
    assert 2 * 3600 <= reused["age_s"] < 2 * 3600 + 60
    assert calibrate_peaks(CPU, cache, size=256)["tflops"] == -1.0
    rerun = calibrate_peaks(CPU, cache, size=128)
    assert rerun["tflops"] > 0 and rerun["matmul_size"] == 128 and rerun["source"] == "measured"
    assert len(_entries(cache)) == 1  # the new size replaced this machine's entry


@pytest.mark.parametrize(
    "changed",
    [{"driver": "999.99"}, {"device_id": "another-host"}, {"torch": "1.0"}, {"cuda": "9.0"}],
)
def test_another_machine_or_software_misses_the_cache(tmp_path, changed):
    cache = tmp_path / "calibration.json"
    first = calibrate_peaks(CPU, cache, size=128)
    other = _rewrite(cache, machine=first["machine"] | changed)
    result = calibrate_peaks(CPU, cache, size=128)
    assert result["tflops"] > 0 and result["source"] == "measured"
    # The other machine's entry stays beside this one's.
    assert [e["machine"] for e in _entries(cache)] == [other["machine"], first["machine"]]


def test_force_measures_again_and_refreshes_the_cache(tmp_path):
    cache = tmp_path / "calibration.json"
    calibrate_peaks(CPU, cache, size=128)
    _rewrite(cache)
    forced = calibrate_peaks(CPU, cache, size=128, force=True)
    assert forced["tflops"] > 0 and forced["source"] == "measured"
    (entry,) = _entries(cache)
    assert entry["tflops"] == forced["tflops"]


def test_old_cache_keyed_by_device_name_is_not_reused(tmp_path):
    cache = tmp_path / "calibration.json"
    first = calibrate_peaks(CPU, None, size=128)
    old = {k: v for k, v in first.items() if k not in ("machine", "measured_at", "source")}
    cache.write_text(json.dumps({f"{first['device_name']}|float32": old | {"tflops": -1.0}}))
    result = calibrate_peaks(CPU, cache, size=128)
    assert result["tflops"] > 0 and result["source"] == "measured"
    assert len(_entries(cache)) == 1


def test_dtypes_are_cached_apart(tmp_path):
    cache = tmp_path / "calibration.json"
    calibrate_peaks(CPU, cache, size=128)
    calibrate_peaks(resolve_placement("cpu", "bfloat16"), cache, size=128)
    assert sorted(e["machine"]["dtype"] for e in _entries(cache)) == ["bfloat16", "float32"]


def test_unreadable_cache_is_recalibrated(tmp_path):
    cache = tmp_path / "calibration.json"
    cache.write_text("{not json")
    assert calibrate_peaks(CPU, cache, size=128)["tflops"] > 0
    assert json.loads(cache.read_text())


def test_without_cache_path_nothing_is_written(tmp_path):
    assert calibrate_peaks(CPU, None, size=128)["tflops"] > 0
    assert list(tmp_path.iterdir()) == []

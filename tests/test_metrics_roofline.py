"""The roofline arithmetic: bound, attainable rate and distance of chosen work and peaks."""

import pytest

from vlmprof.metrics.roofline import (
    NO_BYTES,
    against_peak,
    bound,
    decode_step_roofline,
    page_roofline,
    stage_roofline,
)

# 1 TFLOP/s and 0.1 TB/s: the ridge is at 10 FLOP/byte.
PEAK = {"tflops": 1.0, "tbps": 0.1}
PEAKS = {"reference": {"tflops": None, "tbps": None}, "calibrated": PEAK}


def test_the_longer_of_compute_and_memory_time_is_the_bound():
    # 2e9 FLOPs take 2 ms at 1 TFLOP/s; 1e8 bytes take 1 ms at 0.1 TB/s.
    assert bound(2e9, 1e8, PEAK).roof == "compute"
    assert bound(2e9, 1e8, PEAK).ms == pytest.approx(2.0)
    assert bound(2e9, 4e8, PEAK).roof == "memory"
    assert bound(2e9, 4e8, PEAK).ms == pytest.approx(4.0)
    # At the ridge itself the stage is compute-bound.
    assert bound(1e9, 1e8, PEAK).roof == "compute"


def test_without_bytes_or_bandwidth_compute_alone_bounds():
    assert bound(2e9, None, PEAK).roof == NO_BYTES
    assert bound(2e9, 4e8, {"tflops": 1.0, "tbps": None}).roof == NO_BYTES
    assert bound(2e9, 4e8, {"tflops": None, "tbps": 0.1}) is None
    assert bound(0.0, 4e8, PEAK) is None


def test_distance_is_one_over_the_larger_utilisation():
    flops, moved, time_ms = 2e9, 4e8, 10.0
    entry = against_peak(flops, moved, time_ms, PEAK)
    mfu = flops / (time_ms / 1e3) / 1e12
    mbu = moved / (time_ms / 1e3) / (0.1 * 1e12)
    assert entry["distance"] == pytest.approx(1 / max(mfu, mbu))
    # Memory-bound: the attainable rate is intensity x bandwidth, below the compute peak.
    assert entry["attainable_tflops"] == pytest.approx(flops / moved * 0.1)
    assert entry["bytes_counted"] is True


def test_stage_and_page_entries():
    prefill = stage_roofline(8e9, 2e8, 20.0, 2, PEAKS)
    decode = stage_roofline(1e9, 6e8, 30.0, 2, PEAKS)
    assert prefill["datasheet"] is None
    assert prefill["intensity_necessary"] == pytest.approx(40.0)
    assert prefill["bytes_as_implemented_total"] is None
    assert prefill["intensity_as_implemented"] is None
    # Bytes as implemented stand beside the necessary bytes; the bound stays theirs.
    copies = stage_roofline(8e9, 2e8, 20.0, 2, PEAKS, bytes_as_implemented_total=8e8)
    assert copies["bytes_as_implemented_per_run"] == pytest.approx(4e8)
    assert copies["intensity_as_implemented"] == pytest.approx(10.0)
    assert copies["calibrated"] == prefill["calibrated"]
    assert prefill["flops_per_run"] == pytest.approx(4e9)
    assert prefill["achieved_tflops"] == pytest.approx(8e9 / 20e-3 / 1e12)
    assert (prefill["calibrated"]["bound"], decode["calibrated"]["bound"]) == ("compute", "memory")
    page = page_roofline(prefill, decode, 50.0, 2)
    assert page["calibrated"]["bound_ms"] == pytest.approx(8.0 + 6.0)
    assert page["calibrated"]["distance"] == pytest.approx(50.0 / 14.0)
    assert page["calibrated"]["bound"] == "prefill compute + decode memory"
    assert page["datasheet"] is None


def test_decode_step_time_at_each_bandwidth():
    step = decode_step_roofline(6e8, 30.0, 10, PEAKS, bytes_as_implemented_total=9e8)
    assert step["bytes_necessary_per_token"] == pytest.approx(6e7)
    assert step["bytes_as_implemented_per_token"] == pytest.approx(9e7)
    assert step["ms_per_token_measured"] == pytest.approx(3.0)
    assert step["ms_per_token_at_calibrated_bw"] == pytest.approx(6e7 / 0.1e12 * 1e3)
    assert step["ms_per_token_at_datasheet_bw"] is None
    assert decode_step_roofline(0.0, 0.0, 0, PEAKS)["bytes_necessary_per_token"] is None

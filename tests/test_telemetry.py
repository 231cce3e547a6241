"""GPU telemetry: energy, run summaries, the repeatability guard and the sampler's start/stop,
on sample series recorded (built) here, so everything runs without a GPU or NVML."""

from __future__ import annotations

import json
import logging
import time

import pytest
import torch
from PIL import Image

from tests.telemetry_replay import STEP_S, ramp_series, run_series
from tests.workflow_helpers import default_settings
from vlmprof.metrics.document import Telemetry
from vlmprof.metrics.telemetry import energy_table, flagged_table, telemetry_section
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.placement import Placement
from vlmprof.runtime.nvml_sample import Sample, decode, encode, sample_reader
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.telemetry import (
    TelemetrySampler,
    decode_reasons,
    energy_j,
    flag_runs,
    summarize_run,
)
from vlmprof.runtime.timed_run import telemetry_sampler, timed_run
from vlmprof.typed_json import read_as

THERMAL = 0x20  # sw_thermal_slowdown
POWER_CAP = 0x4
IDLE = 0x1


def shown(section: dict) -> Telemetry:
    """A built telemetry section as metrics.json's readers get it."""
    return read_as(Telemetry, section, "telemetry")


def exact_ramp_j(t0: float, t1: float) -> float:
    return 100.0 * (t1 - t0) + 200.0 * (t1 * t1 - t0 * t0)


@pytest.mark.parametrize("window", [(0.1, 0.5), (0.105, 0.497), (0.0, 1.0), (0.31, 0.33)])
def test_energy_by_integrating_power_matches_the_exact_integral(window):
    # Power is linear, so the trapezoidal rule is exact, bounds between samples included.
    assert energy_j(ramp_series(counter=False), *window) == pytest.approx(exact_ramp_j(*window))


def test_energy_from_the_counter_alone_is_its_difference_at_the_bounds():
    samples = [Sample(s.timestamp_s, energy_mj=s.energy_mj) for s in ramp_series()]
    # On the sample grid the counter's difference is exact.
    assert energy_j(samples, 0.1, 0.5) == pytest.approx(exact_ramp_j(0.1, 0.5))
    # Between samples the counter is interpolated linearly: close to, not equal to, exact.
    assert energy_j(samples, 0.105, 0.497) == pytest.approx(exact_ramp_j(0.105, 0.497), rel=1e-3)


def test_power_and_counter_agreeing_give_the_exact_energy_between_samples():
    assert energy_j(ramp_series(), 0.105, 0.497) == pytest.approx(exact_ramp_j(0.105, 0.497))


def test_the_counter_sets_the_total_and_power_alone_is_the_fallback():
    # Power readings that disagree with the counter (NVML power is an average on many GPUs).
    flat = [
        Sample(i * STEP_S, power_w=50.0, energy_mj=1000.0 * 300.0 * i * STEP_S) for i in range(11)
    ]
    assert energy_j(flat, 0.0, 0.2) == pytest.approx(60.0)
    power_only = [Sample(s.timestamp_s, power_w=50.0) for s in flat]
    assert energy_j(power_only, 0.0, 0.2) == pytest.approx(10.0)


def test_a_window_past_the_last_reading_holds_its_power_at_the_counters_scale():
    # The sampler's last reading comes before the run ends (stop() never waits for one):
    # the 300 W the counter shows over the series carries on to the window's end.
    flat = [
        Sample(i * STEP_S, power_w=50.0, energy_mj=1000.0 * 300.0 * i * STEP_S) for i in range(11)
    ]
    assert energy_j(flat, -0.01, 0.25) == pytest.approx(300.0 * 0.26)


def test_a_counter_read_only_at_the_ends_scales_the_power_trace():
    # The sampler reads the counter at a series' first and last sample only: power (a lagging
    # average) gives the shape, the counter the total: 0 -> 0.2 s holds 60 J.
    power = [50.0] * 5 + [150.0] * 6
    bracket = [
        Sample(i * STEP_S, power_w=p, energy_mj=None if 0 < i < 10 else 300_000.0 * i * STEP_S)
        for i, p in enumerate(power)
    ]
    total = energy_j(bracket, 0.0, 0.2)
    first, second = energy_j(bracket, 0.0, 0.1), energy_j(bracket, 0.1, 0.2)
    assert total == pytest.approx(60.0)
    assert first + second == pytest.approx(total)
    # Trapezoids of the power trace: 0-0.1 s holds 4 + 2 J, 0.1-0.2 s holds 15 J.
    assert second / first == pytest.approx(15.0 / 6.0)


def test_energy_is_none_without_power_or_counter_or_for_an_empty_window():
    assert (
        energy_j([Sample(0.0, sm_clock_mhz=1980), Sample(0.1, sm_clock_mhz=1980)], 0, 0.1) is None
    )
    assert energy_j([], 0.0, 1.0) is None
    assert energy_j(ramp_series(), 0.5, 0.5) is None


def test_reasons_are_decoded_to_names_with_unknown_bits_kept():
    assert decode_reasons(0) == []
    assert decode_reasons(IDLE | THERMAL) == ["gpu_idle", "sw_thermal_slowdown"]
    assert decode_reasons(POWER_CAP | 0x10000) == ["sw_power_cap", "0x10000"]


WINDOWS = {"prefill": (0.1, 0.3), "decode": (0.3, 0.9), "run": (0.1, 0.9)}


def test_a_run_summary_splits_energy_by_stage_and_reads_only_its_window():
    # Thermal slowdown before the run (sample 2) does not count; a power cap inside it does.
    summary = summarize_run(run_series(reasons_at={2: THERMAL, 20: POWER_CAP}), WINDOWS)
    energy = summary["energy_j"]
    for stage, window in WINDOWS.items():
        assert energy[stage] == pytest.approx(exact_ramp_j(*window))
    assert energy["prefill"] + energy["decode"] == pytest.approx(energy["run"])
    assert summary["mean_power_w"] == pytest.approx(exact_ramp_j(0.1, 0.9) / 0.8)
    assert summary["peak_power_w"] == pytest.approx(100.0 + 400.0 * 0.9)
    assert summary["samples"] == 41
    assert (summary["sm_clock_min_mhz"], summary["sm_clock_max_mhz"]) == (1780.0, 1980.0)
    assert summary["sm_clock_median_mhz"] == 1980.0
    # The memory clock is down for 21 of the run window's 41 samples (30 of all 51 are up).
    assert summary["mem_clock_median_mhz"] == 1593.0
    assert summary["peak_temperature_c"] == pytest.approx(40.0 + 30.0 * 0.9)
    assert summary["throttle_reasons"] == ["sw_power_cap"]
    assert summary["thermal_or_power_throttled"] is True
    assert (
        summarize_run(run_series(reasons_at={20: IDLE}), WINDOWS)["thermal_or_power_throttled"]
        is False
    )


def record(image_id: str, repeat: int, telemetry: dict | None, tokens: int = 32) -> dict:
    """A run record as timed_run writes it (the sampler's cost added to the summary)."""
    if telemetry is not None:
        telemetry = telemetry | {"overhead": {"readings": 41, "read_mean_ms": 0.05}}
    return {
        "image_id": image_id,
        "repeat": repeat,
        "shard": 0,
        "status": "ok",
        "tokens": tokens,
        "prefill_ms": 200.0,
        "decode_ms": 600.0,
        "telemetry": telemetry,
    }


def recorded_runs() -> list[dict]:
    """Four runs at full clock, one whose clock sagged 10%, one thermally throttled, one CPU."""
    runs = [record(f"p{i}", 0, summarize_run(run_series(), WINDOWS)) for i in range(4)]
    runs.append(record("slow", 1, summarize_run(run_series(clock_mhz=1782.0), WINDOWS)))
    runs.append(record("hot", 2, summarize_run(run_series(reasons_at={25: THERMAL}), WINDOWS)))
    runs.append(record("cpu", 0, None))
    return runs


def test_runs_with_sagging_clocks_or_thermal_throttling_are_flagged():
    flagged = {run["image_id"]: run for run in flag_runs(recorded_runs(), 0.05)}
    assert sorted(flagged) == ["hot", "slow"]
    assert flagged["slow"]["repeat"] == 1 and "10.0% below" in flagged["slow"]["reasons"][0]
    assert flagged["hot"]["reasons"] == ["throttled: sw_thermal_slowdown"]
    # A larger tolerance lets the 10% sag through; throttling is flagged regardless.
    assert [run["image_id"] for run in flag_runs(recorded_runs(), 0.15)] == ["hot"]


def test_metrics_section_gives_energy_per_page_token_and_cost():
    config = {"telemetry": {"clock_drop_fraction": 0.05, "energy_price_per_kwh": 0.36}}
    section = telemetry_section(recorded_runs(), config, {"nvml": "ok"})
    run_j = exact_ramp_j(0.1, 0.9)
    assert section["available"] and section["runs"] == 6
    assert section["joules_per_page"] == pytest.approx(run_j)
    assert section["joules_per_output_token"] == pytest.approx(run_j / 32)
    assert section["cost_per_page"] == pytest.approx(run_j / 3.6e6 * 0.36)
    assert section["sm_clock_min_mhz"] == pytest.approx(1582.0)
    assert section["throttle_reasons_seen"] == ["sw_thermal_slowdown"]
    assert section["sampler_read_mean_ms"] == pytest.approx(0.05)
    assert len(flagged_table(shown(section))) == 2
    table = energy_table(shown(section))
    assert list(table.index) == ["prefill", "decode", "run"]
    assert table.loc["run", "share of run (%)"] == pytest.approx(100.0)
    assert table.loc["prefill", "share of run (%)"] + table.loc["decode", "share of run (%)"] == (
        pytest.approx(100.0)
    )
    assert telemetry_section(recorded_runs(), {}, {})["cost_per_page"] is None


def test_the_sections_power_is_every_runs_energy_over_their_time():
    runs = recorded_runs()
    run_j, watts = exact_ramp_j(0.1, 0.9), exact_ramp_j(0.1, 0.9) / 0.8
    longer = runs[0]["telemetry"]  # a run of twice the energy at four times the power
    longer["energy_j"]["run"], longer["mean_power_w"] = 2 * run_j, 4 * watts
    section = telemetry_section(runs, {}, {"nvml": "ok"})
    seconds = 5 * 0.8 + 0.8 / 2
    assert section["mean_power_w"] == pytest.approx((5 * run_j + 2 * run_j) / seconds)
    assert section["mean_power_w"] != pytest.approx((5 * watts + 4 * watts) / 6)


def test_a_stage_no_run_has_energy_for_is_left_out_of_the_table():
    runs = recorded_runs()
    for run in runs:
        if run["telemetry"] is not None:
            run["telemetry"]["energy_j"]["prefill"] = None
    section = telemetry_section(runs, {}, {"nvml": "ok"})
    assert section["energy_j"]["prefill"]["n"] == 0
    assert section["energy_j"]["decode"]["n"] == 6
    assert list(energy_table(shown(section)).index) == ["decode", "run"]


@pytest.mark.parametrize(
    ("config", "environment", "expected"),
    [
        ({}, {"nvml": "unavailable: device is cpu, not CUDA"}, "NVML unavailable: device is cpu"),
        ({"telemetry": {"enabled": False}}, {"nvml": "ok"}, "switched off"),
        ({}, {"nvml": "ok"}, "no run record carries telemetry"),
    ],
)
def test_metrics_section_without_telemetry_says_why(config, environment, expected):
    section = telemetry_section([record("cpu", 0, None)], config, environment)
    assert section["available"] is False and section["reason"].startswith(expected)
    assert energy_table(shown(section)).empty and flagged_table(shown(section)).empty


REPLAY = "tests.telemetry_replay:"


def test_sampler_collects_one_series_per_start_stop():
    sampler = TelemetrySampler("0", interval_ms=5, counter_interval_ms=10, reader=REPLAY + "ramp")
    assert sampler.available and sampler.reason is None
    assert sampler.lookback_s == pytest.approx(2.01)  # the counter's shortest span, 2 s
    series = []
    for _ in range(2):
        begin = time.perf_counter()
        sampler.start()
        time.sleep(0.1)
        samples = sampler.stop()
        series.append((begin, time.perf_counter(), samples, sampler.overhead()))
    sampler.close()
    assert not sampler._path.exists() and not sampler._errors.exists()  # nothing left behind
    for begin, end, samples, overhead in series:
        times = [s.timestamp_s for s in samples]
        # The poller's clock is the run's: the readings fall in the window and its lookback.
        assert begin - 2.01 <= times[0] and times[-1] <= end and times == sorted(times)
        inside = [t for t in times if t >= begin]
        # The sampler counts from its own start(), a moment after `begin`: a reading may
        # fall in between.
        assert 5 <= len(inside) <= 40 and len(inside) - 1 <= overhead["readings"] <= len(inside)
        assert samples[-1].sm_clock_mhz == 1980.0 and samples[-1].power_w is not None
    # The second series' own readings all come after the first one stopped.
    assert min(t.timestamp_s for t in series[1][2] if t.timestamp_s >= series[1][0]) > series[0][1]


def test_a_run_longer_than_the_lookback_keeps_all_its_readings():
    # Readings are kept from the lookback before start() on, however long the run lasts.
    with TelemetrySampler("0", interval_ms=10, reader=REPLAY + "ramp") as sampler:
        sampler.start()
        begin = time.perf_counter()
        time.sleep(sampler.lookback_s + 0.3)
        samples = sampler.stop()
    inside = [s for s in samples if s.timestamp_s >= begin]
    assert inside[0].timestamp_s < begin + 0.05
    assert len(inside) >= (sampler.lookback_s + 0.3) / 0.01 * 0.8


def test_start_and_stop_never_wait_for_a_reading():
    # One NVML read of the energy counter takes milliseconds on an H100: it happens in the
    # poller's process, never on the timed run's thread.
    sampler = TelemetrySampler("0", interval_ms=5, reader=REPLAY + "slow")
    begin = time.perf_counter()
    sampler.start()
    started = time.perf_counter()
    time.sleep(0.12)
    stop_begin = time.perf_counter()
    samples = sampler.stop()
    stopped = time.perf_counter()
    sampler.close()
    assert started - begin < 0.01 and stopped - stop_begin < 0.01
    assert 1 <= len(samples) <= 3  # one reading per 50 ms, none waited for


def test_the_counter_is_read_at_its_own_interval_and_still_scales_a_short_run():
    # Power every 5 ms, the counter every 100 ms: a 40 ms run holds at most one counter
    # reading, so the series reaches back to two and the 200 W trace is scaled to 300 W.
    with TelemetrySampler("0", 5, counter_interval_ms=100, reader=REPLAY + "steady") as sampler:
        time.sleep(0.25)
        sampler.start()
        begin = time.perf_counter()
        time.sleep(0.04)
        end = time.perf_counter()
        samples = sampler.stop()
    counted = [s for s in samples if s.energy_mj is not None]
    assert 2 <= len(counted) <= 4 and len(counted) < len(samples) / 4
    assert samples[0].timestamp_s < begin - 0.1  # the lookback before the run
    assert energy_j(samples, begin, end) == pytest.approx(300.0 * (end - begin), rel=0.02)
    assert summarize_run(samples, {"run": (begin, end)})["samples"] <= 10


def test_a_poller_that_cannot_read_makes_the_sampler_unavailable(caplog):
    with caplog.at_level(logging.WARNING, logger="vlmprof.runtime.telemetry"):
        sampler = TelemetrySampler("0", reader=REPLAY + "failing")
    assert not sampler.available
    assert sampler.reason == "NVML: RuntimeError: no NVML on this machine"
    assert caplog.records[-1].getMessage().endswith("no NVML on this machine")
    sampler.start()
    assert sampler.stop() == []
    sampler.close()
    assert not sampler._path.exists() and not sampler._errors.exists()


def test_a_record_keeps_every_field_and_unsupported_ones_as_none():
    sample = Sample(12.5, sm_clock_mhz=1980.0, power_w=312.25, energy_mj=987_654_321_012)
    sample = Sample(**(sample.to_dict() | {"mem_used_bytes": 81_000_000_000}))
    data = encode(sample, 0.004) + encode(Sample(13.0), 0.001)
    decoded = decode(data + data[:7])  # a record still being written is left for later
    assert decoded == [(sample, 0.004), (Sample(13.0), 0.001)]
    assert isinstance(decoded[0][0].energy_mj, int) and decoded[1][0].power_w is None


def test_sampler_refuses_unbalanced_start_stop():
    sampler = TelemetrySampler("0", interval_ms=5, reader=REPLAY + "ramp")
    with pytest.raises(RuntimeError, match="without start"):
        sampler.stop()
    sampler.start()
    with pytest.raises(RuntimeError, match="already started"):
        sampler.start()
    sampler.stop()
    sampler.close()


def test_unavailable_sampler_says_why_once_and_records_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="vlmprof.runtime.telemetry"):
        sampler = TelemetrySampler(None)
        for _ in range(3):
            sampler.start()
            assert sampler.stop() == []
    assert not sampler.available and sampler.reason == "not a CUDA device"
    assert [r.getMessage() for r in caplog.records] == [
        "GPU telemetry unavailable: not a CUDA device"
    ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable GPU")
def test_without_nvml_the_sampler_is_unavailable_not_failing():
    sampler = TelemetrySampler("0")
    assert not sampler.available and sampler.reason
    sampler.close()


@pytest.fixture(scope="module")
def adapter():
    return build_adapter(ModelSpec(preset="small", mode="tiny"))


def test_timed_run_puts_stage_energy_in_the_record(adapter):
    settings = default_settings(max_new_tokens=4, nvtx=False)
    inputs = adapter.preprocess(Image.new("RGB", (640, 640), "white"))
    with TelemetrySampler("0", interval_ms=1, reader=REPLAY + "ramp_power_only") as sampler:
        timing = timed_run(adapter, [inputs], settings, NvtxRanges(enabled=False), sampler, True)
    telemetry = timing["telemetry"]
    energy = telemetry["energy_j"]
    assert all(energy[stage] > 0 for stage in ("prefill", "decode", "run"))
    assert energy["prefill"] + energy["decode"] <= energy["run"] * (1 + 1e-9)
    windows = telemetry["series"]["stage_windows_s"]
    assert windows["run"][0] == 0.0
    # Stage windows are placed by the stage timer's own durations.
    assert windows["prefill"][1] == pytest.approx(timing["prefill_ms"] / 1000.0, abs=1e-5)
    assert windows["run"][1] - windows["decode"][0] == pytest.approx(
        timing["decode_ms"] / 1000.0, abs=1e-5
    )
    times = telemetry["series"]["columns"]["t_s"]
    assert times[0] <= 0.0 < times[1]  # the timeline starts at the last reading before the run
    # Readings count from start(), just before the run's clock starts.
    assert telemetry["overhead"]["readings"] - len([t for t in times if t >= 0.0]) in (0, 1, 2)
    without = timed_run(adapter, [inputs], settings, NvtxRanges(enabled=False))
    assert without["telemetry"] is None


def test_cpu_shard_sampler_is_unavailable_and_off_switch_is_named():
    settings = default_settings()
    assert telemetry_sampler(Placement("cpu", "float32"), settings).reason == "not a CUDA device"
    gpu = Placement("cuda:0", "bfloat16", 0, "GPU-0", "a GPU")
    off = telemetry_sampler(gpu, default_settings(telemetry=False))
    assert not off.available and "telemetry.enabled" in off.reason


@pytest.mark.slow
def test_cpu_default_run_says_telemetry_is_unavailable(pipeline_run):
    records = [json.loads(line) for line in (pipeline_run / "runs" / "shard-0.jsonl").open()]
    assert records and all(r["telemetry"] is None for r in records)
    section = json.loads((pipeline_run / "metrics.json").read_text())["telemetry"]
    # Unavailable, with the reason, and no reading of any kind.
    assert section["available"] is False and "not CUDA" in section["reason"]
    readings = {key: value for key, value in section.items() if key not in ("available", "reason")}
    assert all(value in (None, {}, []) for value in readings.values()), readings
    summary = (pipeline_run / "stakeholder_summary.md").read_text()
    assert "GPU telemetry unavailable on this machine" in summary


class Rates:
    """What NVML returns for utilisation: GPU and memory busy percent."""

    gpu, memory = 40, 12


def test_a_reading_runs_every_query_once_in_nvml_units():
    calls: dict[str, int] = {}

    def query(name: str, *values: object):
        def read() -> object:
            calls[name] = calls.get(name, 0) + 1
            return values[min(calls[name], len(values)) - 1]

        return read

    # The counter (mJ) rises by 1200 J between the first and the last reading.
    queries = {
        "energy_mj": query("energy_mj", *(5000 + 240_000 * i for i in range(6))),
        "power_w": query("power_w", 250_000),
        "sm_clock_mhz": query("sm_clock_mhz", 1980),
        "temperature_c": query("temperature_c", 50),
        "utilisation": query("utilisation", Rates()),
        "throttle_reasons": query("throttle_reasons", 0x4),
    }
    read = sample_reader(queries)
    samples = [read() for _ in range(6)]
    assert set(calls.values()) == {6}
    assert samples[-1].energy_mj == 1_205_000
    assert samples[1].power_w == 250.0 and samples[1].gpu_util_pct == 40
    stamped = [Sample(**(s.to_dict() | {"timestamp_s": float(i)})) for i, s in enumerate(samples)]
    summary = summarize_run(stamped, {"prefill": (0, 2), "decode": (2, 5), "run": (0, 5)})
    assert summary["throttle_reasons"] == ["sw_power_cap"]
    # The counter's 1200 J, split along the (constant) power trace: by duration.
    assert summary["energy_j"]["run"] == pytest.approx(1200.0)
    assert summary["energy_j"]["decode"] == pytest.approx(1.5 * summary["energy_j"]["prefill"])

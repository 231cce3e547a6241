"""GPU telemetry: energy, run summaries, the repeatability guard and the sampler's start/stop,
on sample series recorded (built) here, so everything runs without a GPU or NVML."""

from __future__ import annotations

import json
import logging
import time

import pytest
import torch
from PIL import Image

from vlmprof.metrics.telemetry import energy_table, flagged_table, telemetry_section
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.profile_shard import ProfileSettings, telemetry_sampler, timed_run
from vlmprof.runtime.telemetry import (
    Sample,
    TelemetrySampler,
    decode_reasons,
    energy_j,
    flag_runs,
    sample_reader,
    summarize_run,
)

STEP_S = 0.02
THERMAL = 0x20  # sw_thermal_slowdown
POWER_CAP = 0x4
IDLE = 0x1


def ramp_series(n: int = 51, counter: bool = True) -> list[Sample]:
    """Power rising linearly 100 -> 500 W over 1 s; the counter holds its exact integral."""
    samples = []
    for i in range(n):
        t = i * STEP_S
        power = 100.0 + 400.0 * t
        energy_mj = 5e6 + 1000.0 * (100.0 * t + 200.0 * t * t) if counter else None
        samples.append(Sample(t, power_w=power, energy_mj=energy_mj))
    return samples


def exact_ramp_j(t0: float, t1: float) -> float:
    return 100.0 * (t1 - t0) + 200.0 * (t1 * t1 - t0 * t0)


@pytest.mark.parametrize("window", [(0.1, 0.5), (0.105, 0.497), (0.0, 1.0), (0.31, 0.33)])
def test_energy_by_integrating_power_matches_the_exact_integral(window):
    # Power is linear, so the trapezoidal rule is exact, bounds between samples included.
    assert energy_j(ramp_series(counter=False), *window) == pytest.approx(exact_ramp_j(*window))


def test_energy_from_the_counter_is_its_difference_at_the_bounds():
    samples = ramp_series()
    # On the sample grid the counter's difference is exact.
    assert energy_j(samples, 0.1, 0.5) == pytest.approx(exact_ramp_j(0.1, 0.5))
    # Between samples the counter is interpolated linearly: close to, not equal to, exact.
    assert energy_j(samples, 0.105, 0.497) == pytest.approx(exact_ramp_j(0.105, 0.497), rel=1e-3)


def test_a_counter_at_every_sample_wins_over_power_and_power_is_the_fallback():
    # Power readings that disagree with the counter (NVML power is an average on many GPUs).
    flat = [
        Sample(i * STEP_S, power_w=50.0, energy_mj=1000.0 * 300.0 * i * STEP_S) for i in range(11)
    ]
    assert energy_j(flat, 0.0, 0.2) == pytest.approx(60.0)
    power_only = [Sample(s.timestamp_s, power_w=50.0) for s in flat]
    assert energy_j(power_only, 0.0, 0.2) == pytest.approx(10.0)


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


def run_series(clock_mhz: float = 1980.0, reasons_at: dict[int, int] | None = None) -> list[Sample]:
    """A recorded run: 1 s at 20 ms, the clock dipping at 0.6 s, temperature rising."""
    reasons_at = reasons_at or {}
    samples = []
    for i, base in enumerate(ramp_series()):
        t = base.timestamp_s
        samples.append(
            Sample(
                t,
                sm_clock_mhz=clock_mhz - (200.0 if i == 30 else 0.0),
                power_w=base.power_w,
                energy_mj=base.energy_mj,
                temperature_c=40.0 + 30.0 * t,
                throttle_reasons=reasons_at.get(i, 0),
            )
        )
    return samples


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
    assert len(flagged_table(section)) == 2
    table = energy_table(section)
    assert list(table.index) == ["prefill", "decode", "run"]
    assert table.loc["run", "share of run (%)"] == pytest.approx(100.0)
    assert table.loc["prefill", "share of run (%)"] + table.loc["decode", "share of run (%)"] == (
        pytest.approx(100.0)
    )
    assert telemetry_section(recorded_runs(), {}, {})["cost_per_page"] is None


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
    assert energy_table(section).empty and flagged_table(section).empty


class Replay:
    """A recorded series replayed as live readings: each read returns the next sample, stamped
    with the time it was taken, as the NVML reader would."""

    def __init__(self, series: list[Sample]) -> None:
        self.series, self.reads = series, 0

    def __call__(self, bracket: bool = False) -> Sample:
        sample = self.series[self.reads % len(self.series)]
        self.reads += 1
        fields = sample.to_dict() | {"timestamp_s": time.perf_counter()}
        return Sample(**fields)


def test_sampler_collects_one_series_per_start_stop():
    sampler = TelemetrySampler(0, interval_ms=5, reader=Replay(run_series()))
    assert sampler.available and sampler.reason is None
    series = []
    for _ in range(2):
        sampler.start()
        begin = time.perf_counter()
        time.sleep(0.1)
        end = time.perf_counter()
        series.append((begin, end, sampler.stop(), sampler.overhead()))
    for begin, end, samples, overhead in series:
        times = [s.timestamp_s for s in samples]
        # One reading before the run and one after it bracket the window; polling in between.
        assert times[0] <= begin and times[-1] >= end and times == sorted(times)
        assert 5 <= len(samples) <= 40
        assert overhead["readings"] == len(samples) - 2  # the bracketing two are not timed
    assert series[1][2][0].timestamp_s > series[0][2][-1].timestamp_s, "series must not mix"
    # Stopped: no reading is taken until the next start.
    reads = sampler._read.reads  # type: ignore[union-attr]
    time.sleep(0.03)
    assert sampler._read.reads == reads  # type: ignore[union-attr]


def test_sampler_refuses_unbalanced_start_stop():
    sampler = TelemetrySampler(0, interval_ms=5, reader=Replay(run_series()))
    with pytest.raises(RuntimeError, match="without start"):
        sampler.stop()
    sampler.start()
    with pytest.raises(RuntimeError, match="already started"):
        sampler.start()
    sampler.stop()


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
    sampler = TelemetrySampler(0)
    assert not sampler.available and sampler.reason
    sampler.close()


@pytest.fixture(scope="module")
def adapter():
    return build_adapter(ModelSpec(preset="small", mode="tiny"))


def test_timed_run_puts_stage_energy_in_the_record(adapter):
    settings = ProfileSettings(run_id="t", shard=0, max_new_tokens=4, nvtx=False)
    inputs = adapter.preprocess(Image.new("RGB", (640, 640), "white"))
    # Power only: the replay wraps around, which a cumulative counter never does.
    sampler = TelemetrySampler(0, interval_ms=1, reader=Replay(ramp_series(counter=False)))
    timing = timed_run(adapter, inputs, settings, NvtxRanges(enabled=False), sampler, True)
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
    polled = len(telemetry["series"]["columns"]["t_s"]) - 2  # not the bracketing two
    assert telemetry["overhead"]["readings"] == polled
    without = timed_run(adapter, inputs, settings, NvtxRanges(enabled=False))
    assert without["telemetry"] is None


def test_cpu_shard_sampler_is_unavailable_and_off_switch_is_named():
    settings = ProfileSettings(run_id="t", shard=0)
    assert telemetry_sampler(torch.device("cpu"), settings).reason == "not a CUDA device"
    off = telemetry_sampler(torch.device("cuda", 0), ProfileSettings("t", 0, telemetry=False))
    assert not off.available and "telemetry.enabled" in off.reason


@pytest.mark.slow
def test_cpu_default_run_says_telemetry_is_unavailable(pipeline_run):
    records = [json.loads(line) for line in (pipeline_run / "runs" / "shard-0.jsonl").open()]
    assert records and all(r["telemetry"] is None for r in records)
    section = json.loads((pipeline_run / "metrics.json").read_text())["telemetry"]
    assert section == {"available": False, "reason": section["reason"]}
    assert "not CUDA" in section["reason"]
    summary = (pipeline_run / "stakeholder_summary.md").read_text()
    assert "GPU telemetry unavailable on this machine" in summary


class Rates:
    """What NVML returns for utilisation: GPU and memory busy percent."""

    gpu, memory = 40, 12


def test_the_energy_counter_is_read_only_at_the_ends_of_a_series():
    calls: dict[str, int] = {}

    def query(name: str, *values: object):
        def read() -> object:
            calls[name] = calls.get(name, 0) + 1
            return values[min(calls[name], len(values)) - 1]

        return read

    # The counter (mJ) rises by 1200 J between the first and the last reading.
    queries = {
        "energy_mj": query("energy_mj", 5000, 5000 + 1_200_000),
        "power_w": query("power_w", 250_000),
        "sm_clock_mhz": query("sm_clock_mhz", 1980),
        "temperature_c": query("temperature_c", 50),
        "utilisation": query("utilisation", Rates()),
        "throttle_reasons": query("throttle_reasons", 0x4),
    }
    read = sample_reader(queries)
    samples = [read(bracket=True), *(read() for _ in range(5)), read(bracket=True)]
    # The counter (milliseconds per read on an H100) brackets the series; the rest is polled.
    assert calls["energy_mj"] == 2
    assert [s.energy_mj for s in samples] == [5000] + [None] * 5 + [1_205_000]
    assert calls["power_w"] == calls["sm_clock_mhz"] == calls["throttle_reasons"] == 7
    assert samples[1].power_w == 250.0 and samples[1].gpu_util_pct == 40
    stamped = [Sample(**(s.to_dict() | {"timestamp_s": float(i)})) for i, s in enumerate(samples)]
    summary = summarize_run(stamped, {"prefill": (0, 2), "decode": (2, 6), "run": (0, 6)})
    assert summary["throttle_reasons"] == ["sw_power_cap"]
    # The counter's 1200 J, split along the (constant) power trace: by duration.
    assert summary["energy_j"]["run"] == pytest.approx(1200.0)
    assert summary["energy_j"]["decode"] == pytest.approx(2 * summary["energy_j"]["prefill"])

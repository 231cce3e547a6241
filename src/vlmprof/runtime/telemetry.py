"""GPU telemetry around each timed run: a background thread polls NVML at a fixed interval.

The sampler is started and stopped around every image x repeat; the pure functions below turn
a recorded sample series into per-stage energy, power, clock and temperature figures, so
they can be tested on recorded series without a GPU. Without a GPU or NVML the sampler says
once why it is unavailable and records carry no telemetry; nothing fails.
"""

from __future__ import annotations

import bisect
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from vlmprof.runtime.nvml_poller import DEFAULT_READER
from vlmprof.runtime.nvml_sample import RECORD, Sample, decode

log = logging.getLogger(__name__)

# NVML clock event ("throttle") reason bits, as in nvml.h.
THROTTLE_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# Reasons that mean the run's clocks were held down by heat or power: its times are suspect.
THERMAL_OR_POWER: frozenset[str] = frozenset(
    {
        "sw_power_cap",
        "hw_slowdown",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    }
)
STAGES: tuple[str, ...] = ("prefill", "decode", "run")


def decode_reasons(mask: int) -> list[str]:
    """Names of the reason bits set in `mask` (unknown bits as hex)."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    return names + ([hex(unknown)] if unknown else [])


def _series(samples: Sequence[Sample], field: str) -> tuple[list[float], list[float]]:
    """Timestamps and values of `field` over the samples that have it."""
    points = [(s.timestamp_s, getattr(s, field)) for s in samples if getattr(s, field) is not None]
    return [t for t, _ in points], [float(v) for _, v in points]


def _at(times: list[float], values: list[float], t: float) -> float:
    """Piecewise-linear value at `t`, held constant beyond the first and last points."""
    i = bisect.bisect_left(times, t)
    if i == 0:
        return values[0]
    if i == len(times):
        return values[-1]
    t0, t1 = times[i - 1], times[i]
    return values[i - 1] + (values[i] - values[i - 1]) * (t - t0) / (t1 - t0)


def _integral(times: list[float], values: list[float], t0: float, t1: float) -> float:
    """Trapezoidal integral over [t0, t1] of the piecewise-linear curve through the points."""
    inner = [i for i, t in enumerate(times) if t0 < t < t1]
    knots = [(t0, _at(times, values, t0))] + [(times[i], values[i]) for i in inner]
    knots.append((t1, _at(times, values, t1)))
    return sum((b[0] - a[0]) * (a[1] + b[1]) / 2.0 for a, b in zip(knots, knots[1:], strict=False))


def energy_j(samples: Sequence[Sample], t0: float, t1: float) -> float | None:
    """Energy in joules over [t0, t1], from the best data the series has.

    - Power and at least two counter readings: power integrated over the window (power
      held at its first and last reading beyond the series), scaled so that power between
      the first and last counter readings matches the counter. The counter gives the total,
      power the shape, and the window may reach past the last reading.
    - The counter alone: its difference, interpolated linearly at the bounds.
    - Power alone: integrated by the trapezoidal rule. None without power or counter.
    """
    if not samples or t1 <= t0:
        return None
    times, power = _series(samples, "power_w")
    counter_times, counter = _series(samples, "energy_mj")
    counted = len(counter_times) >= 2 and counter_times[-1] > counter_times[0]
    if times:
        integral = _integral(times, power, t0, t1)
        if counted:
            traced = _integral(times, power, counter_times[0], counter_times[-1])
            if traced > 0:
                return integral * (counter[-1] - counter[0]) / 1000.0 / traced
        return integral
    if counted:
        return (_at(counter_times, counter, t1) - _at(counter_times, counter, t0)) / 1000.0
    return None


def _within(samples: Sequence[Sample], t0: float, t1: float) -> list[Sample]:
    return [s for s in samples if t0 <= s.timestamp_s <= t1]


def _extreme(values: Iterable[float | None], pick: Callable[[list[float]], float]) -> float | None:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def summarize_run(
    samples: Sequence[Sample], stage_windows: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    """Energy per stage (J), mean/peak power (W), SM clock range and median, memory clock
    median (MHz), peak temperature (C) and the clock-event reasons seen during the `run` window."""
    run_t0, run_t1 = stage_windows["run"]
    inside = _within(samples, run_t0, run_t1)
    energy = {stage: energy_j(samples, *stage_windows[stage]) for stage in stage_windows}
    duration_s = run_t1 - run_t0
    mask = 0
    for sample in inside:
        mask |= sample.throttle_reasons or 0
    reasons = decode_reasons(mask)
    sm_clocks = [s.sm_clock_mhz for s in inside if s.sm_clock_mhz is not None]
    mem_clocks = [s.mem_clock_mhz for s in inside if s.mem_clock_mhz is not None]
    return {
        "samples": len(inside),
        "energy_j": energy,
        "mean_power_w": energy["run"] / duration_s if energy.get("run") is not None else None,
        "peak_power_w": _extreme((s.power_w for s in inside), max),
        "sm_clock_min_mhz": min(sm_clocks) if sm_clocks else None,
        "sm_clock_max_mhz": max(sm_clocks) if sm_clocks else None,
        "sm_clock_median_mhz": statistics.median(sm_clocks) if sm_clocks else None,
        "mem_clock_median_mhz": statistics.median(mem_clocks) if mem_clocks else None,
        "peak_temperature_c": _extreme((s.temperature_c for s in inside), max),
        "throttle_reasons": reasons,
        "thermal_or_power_throttled": bool(THERMAL_OR_POWER.intersection(reasons)),
    }


def flag_runs(
    records: Sequence[dict[str, Any]], clock_drop_fraction: float
) -> list[dict[str, Any]]:
    """Runs to distrust: thermal or power throttling seen, or a median SM clock more than
    `clock_drop_fraction` below the median over all runs with telemetry.

    Returns one entry per flagged record: image_id, repeat, shard and the reasons in words.
    """
    measured = [r for r in records if r.get("telemetry")]
    clocks = [
        r["telemetry"]["sm_clock_median_mhz"]
        for r in measured
        if r["telemetry"].get("sm_clock_median_mhz") is not None
    ]
    reference = statistics.median(clocks) if clocks else None
    flagged = []
    for record in measured:
        telemetry = record["telemetry"]
        reasons = []
        clock = telemetry.get("sm_clock_median_mhz")
        if (
            reference is not None
            and clock is not None
            and clock < (1.0 - clock_drop_fraction) * reference
        ):
            reasons.append(
                f"SM clock {clock:.0f} MHz is {1 - clock / reference:.1%} below the "
                f"median {reference:.0f} MHz"
            )
        seen = sorted(THERMAL_OR_POWER.intersection(telemetry.get("throttle_reasons", [])))
        if seen:
            reasons.append("throttled: " + ", ".join(seen))
        if reasons:
            flagged.append(
                {
                    "image_id": record["image_id"],
                    "repeat": record["repeat"],
                    "shard": record.get("shard"),
                    "reasons": reasons,
                }
            )
    return flagged


def series_dict(samples: Sequence[Sample], stage_windows: dict[str, tuple[float, float]]) -> dict:
    """A run's samples as columns with times relative to the run's start (for a timeline),
    from the last reading before the start on (a series also holds a lookback for energy)."""
    origin = stage_windows["run"][0]
    before = [i for i, s in enumerate(samples) if s.timestamp_s <= origin]
    samples = samples[before[-1] :] if before else samples
    columns: dict[str, list[Any]] = {"t_s": [round(s.timestamp_s - origin, 6) for s in samples]}
    for field in ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "gpu_util_pct"):
        columns[field] = [getattr(s, field) for s in samples]
    windows = {
        k: [round(a - origin, 6), round(b - origin, 6)] for k, (a, b) in stage_windows.items()
    }
    return {"columns": columns, "stage_windows_s": windows}


# The shortest span the counter scales a power trace over. On an H100 the counter's
# difference over ~250 ms runs gave 142-288 W for identical runs: it advances in steps.
MIN_COUNTER_SPAN_S = 2.0
# How long a new poller may take to deliver its first reading (NVML initialisation).
FIRST_READING_TIMEOUT_S = 30.0


class TelemetrySampler:
    """Samples a GPU through a poller process (`vlmprof.runtime.nvml_poller`) and hands
    each start()..stop() its readings.

    The poller reads NVML every `interval_ms` (the energy counter every
    `counter_interval_ms`, 0 never) from the sampler's creation to close() and appends each
    reading to a file; start() only notes the time and stop() reads the file, so the
    profiled run's own thread makes no NVML call and shares no GIL with one. A series holds
    the readings between start() and stop() and those of a lookback before start() that
    spans two counter readings and MIN_COUNTER_SPAN_S, so a short run still has its power
    trace scaled to the counter over a span the counter resolves (`energy_j`).

    `device` is the GPU as NVML names it (`vlmprof.runtime.nvml.nvml_device`: a UUID, or an
    index as text). None (a CPU run, or telemetry switched off: `off_reason` says which) or
    a poller that fails (no NVML, a device NVML cannot see) makes the sampler unavailable:
    `available` is False, `reason` says why (logged once), and start()/stop() do nothing.
    `reader` names another "module:function" reader factory for the poller, e.g. one that
    replays a recorded series.
    """

    def __init__(
        self,
        device: str | None,
        interval_ms: float = 20.0,
        counter_interval_ms: float = 500.0,
        reader: str | None = None,
        off_reason: str = "not a CUDA device",
    ) -> None:
        self.interval_s = interval_ms / 1000.0
        span_s = max(2.0 * counter_interval_ms / 1000.0, MIN_COUNTER_SPAN_S)
        self.lookback_s = span_s + 2.0 * interval_ms / 1000.0
        self._recent: list[tuple[Sample, float]] = []  # readings within the lookback
        self.reason: str | None = None
        self.read_s: list[float] = []  # time each reading of the last series took
        self._process: subprocess.Popen[bytes] | None = None
        self._records: Any = None  # the poller's file, read as it grows
        self._pending = b""
        self._started_at: float | None = None
        if device is None:
            self.reason = off_reason
        else:
            self._spawn(device, interval_ms, counter_interval_ms, reader)
        if self.reason is not None:
            log.warning("GPU telemetry unavailable: %s", self.reason)

    @property
    def available(self) -> bool:
        """Whether start() will collect samples."""
        return self._process is not None

    def _spawn(
        self, device: str, interval_ms: float, counter_interval_ms: float, reader: str | None
    ) -> None:
        """Start the poller and wait for its first reading; on failure set `reason`."""
        handle, path = tempfile.mkstemp(prefix="vlmprof-telemetry-", suffix=".bin")
        os.close(handle)
        self._path = Path(path)
        command = [sys.executable, "-m", "vlmprof.runtime.nvml_poller", "--device", device]
        command += ["--interval-ms", str(interval_ms), "--out", path]
        command += ["--counter-interval-ms", str(counter_interval_ms)]
        command += ["--reader", reader or DEFAULT_READER]
        # The poller's messages go to a file: a pipe nobody reads could fill and stall it.
        self._errors = self._path.with_suffix(".log")
        with self._errors.open("wb") as errors:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=errors)
        deadline = time.perf_counter() + FIRST_READING_TIMEOUT_S
        while self._path.stat().st_size == 0 and process.poll() is None:
            if time.perf_counter() > deadline:
                process.kill()
                break
            time.sleep(0.01)
        if self._path.stat().st_size == 0:
            process.wait()
            said = self._errors.read_text(errors="replace").strip()
            self.reason = f"NVML: {said.splitlines()[-1] if said else 'no reading in time'}"
            self._remove_files()
            return
        self._process = process
        self._records = self._path.open("rb")

    def _read_new(self, keep_from: float) -> None:
        """Add the readings the poller appended since the last call to the recent ones, and
        drop those taken before `keep_from`."""
        data = self._pending + self._records.read()
        readings = decode(data)
        self._pending = data[len(readings) * RECORD.size :]
        self._recent = [r for r in self._recent + readings if r[0].timestamp_s >= keep_from]

    def start(self) -> None:
        """Begin a new series now; returns at once."""
        if not self.available:
            return
        if self._started_at is not None:
            raise RuntimeError("telemetry sampler already started")
        now = time.perf_counter()
        self._read_new(keep_from=now - self.lookback_s)
        self._started_at = now

    def stop(self) -> list[Sample]:
        """End the series and return its readings ([] when unavailable)."""
        if not self.available:
            return []
        if self._started_at is None:
            raise RuntimeError("telemetry sampler stopped without start()")
        started_at, stopped_at = self._started_at, time.perf_counter()
        # Keep the whole series, however long the run: the lookback reaches back from start.
        self._read_new(keep_from=started_at - self.lookback_s)
        series = [
            (sample, read_s) for sample, read_s in self._recent if sample.timestamp_s <= stopped_at
        ]
        self.read_s = [read_s for sample, read_s in series if sample.timestamp_s >= started_at]
        self._started_at = None
        return [sample for sample, _ in series]

    def overhead(self) -> dict[str, float | int | None]:
        """What sampling of the last series cost the poller: its readings from start() on,
        their mean and total time (in the poller's process; the run's thread spends none)."""
        count = len(self.read_s)
        total = sum(self.read_s)
        return {
            "readings": count,
            "read_mean_ms": 1000.0 * total / count if count else None,
            "read_total_ms": 1000.0 * total,
        }

    def __enter__(self) -> TelemetrySampler:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the poller (its standard input closes) and remove its files."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._records.close()
        self._remove_files()

    def _remove_files(self) -> None:
        self._path.unlink(missing_ok=True)
        self._errors.unlink(missing_ok=True)

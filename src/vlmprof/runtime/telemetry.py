"""GPU telemetry around each timed run: a background thread polls NVML at a fixed interval.

The sampler is started and stopped around every image x repeat; the pure functions below turn
a recorded sample series into per-stage energy, power, clock and temperature figures, so
they can be tested on recorded series without a GPU. Without a GPU or NVML the sampler says
once why it is unavailable and records carry no telemetry; nothing fails.
"""

from __future__ import annotations

import bisect
import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from vlmprof.runtime.nvml import nvml_handle, nvml_value

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


@dataclass(frozen=True)
class Sample:
    """One NVML reading at host time `timestamp_s` (`time.perf_counter`); None: not supported."""

    timestamp_s: float
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    power_w: float | None = None
    energy_mj: float | None = None  # the device's cumulative counter, millijoules
    temperature_c: float | None = None
    gpu_util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_bytes: int | None = None
    throttle_reasons: int | None = None  # bit mask, see THROTTLE_REASONS

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


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

    - The counter at every sample: its difference, interpolated at the bounds (exact).
    - The counter at some samples only (the sampler reads it at the start and end of a
      series, as one reading costs milliseconds): power integrated over the window, scaled
      so that power between the first and last counter readings matches the counter.
    - No counter: power integrated by the trapezoidal rule. None without power either.
    """
    if not samples or t1 <= t0:
        return None
    if all(s.energy_mj is not None for s in samples):
        times, counter = _series(samples, "energy_mj")
        return (_at(times, counter, t1) - _at(times, counter, t0)) / 1000.0
    times, power = _series(samples, "power_w")
    if not times:
        return None
    integral = _integral(times, power, t0, t1)
    counter_times, counter = _series(samples, "energy_mj")
    if len(counter_times) >= 2 and counter_times[-1] > counter_times[0]:
        traced = _integral(times, power, counter_times[0], counter_times[-1])
        if traced > 0:
            return integral * (counter[-1] - counter[0]) / 1000.0 / traced
    return integral


def _within(samples: Sequence[Sample], t0: float, t1: float) -> list[Sample]:
    return [s for s in samples if t0 <= s.timestamp_s <= t1]


def _extreme(values: Iterable[float | None], pick: Callable[[list[float]], float]) -> float | None:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def summarize_run(
    samples: Sequence[Sample], stage_windows: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    """Energy per stage (J), mean/peak power (W), SM clock range and median (MHz), peak
    temperature (C) and the clock-event reasons seen during the `run` window."""
    run_t0, run_t1 = stage_windows["run"]
    inside = _within(samples, run_t0, run_t1)
    energy = {stage: energy_j(samples, *stage_windows[stage]) for stage in stage_windows}
    duration_s = run_t1 - run_t0
    mask = 0
    for sample in inside:
        mask |= sample.throttle_reasons or 0
    reasons = decode_reasons(mask)
    sm_clocks = [s.sm_clock_mhz for s in inside if s.sm_clock_mhz is not None]
    return {
        "samples": len(inside),
        "energy_j": energy,
        "mean_power_w": energy["run"] / duration_s if energy.get("run") is not None else None,
        "peak_power_w": _extreme((s.power_w for s in inside), max),
        "sm_clock_min_mhz": min(sm_clocks) if sm_clocks else None,
        "sm_clock_max_mhz": max(sm_clocks) if sm_clocks else None,
        "sm_clock_median_mhz": statistics.median(sm_clocks) if sm_clocks else None,
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
    """A run's samples as columns with times relative to the run's start (for a timeline)."""
    origin = stage_windows["run"][0]
    columns: dict[str, list[Any]] = {"t_s": [round(s.timestamp_s - origin, 6) for s in samples]}
    for field in ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "gpu_util_pct"):
        columns[field] = [getattr(s, field) for s in samples]
    windows = {
        k: [round(a - origin, 6), round(b - origin, 6)] for k, (a, b) in stage_windows.items()
    }
    return {"columns": columns, "stage_windows_s": windows}


# Read only at the start and end of a series, outside the timed run: on an H100 one read
# of the energy counter took 3.9 ms, each other query 3-13 us.
BRACKET_FIELDS: tuple[str, ...] = ("energy_mj",)


def nvml_queries(pynvml: Any, handle: Any) -> dict[str, Callable[[], Any]]:
    """Each NVML query of a sample, by what it fills in (raw NVML values)."""
    clock = pynvml.nvmlDeviceGetClockInfo

    def reasons() -> int | None:
        mask = nvml_value(lambda: pynvml.nvmlDeviceGetCurrentClocksEventReasons(handle))
        if mask is None:  # drivers before the rename only know the old name
            mask = nvml_value(lambda: pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))
        return mask

    return {
        # The energy counter first: its timestamp matters most.
        "energy_mj": lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle),
        "power_w": lambda: pynvml.nvmlDeviceGetPowerUsage(handle),
        "sm_clock_mhz": lambda: clock(handle, pynvml.NVML_CLOCK_SM),
        "mem_clock_mhz": lambda: clock(handle, pynvml.NVML_CLOCK_MEM),
        "temperature_c": lambda: pynvml.nvmlDeviceGetTemperature(
            handle, pynvml.NVML_TEMPERATURE_GPU
        ),
        "utilisation": lambda: pynvml.nvmlDeviceGetUtilizationRates(handle),
        "mem_used_bytes": lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used,
        "throttle_reasons": reasons,
    }


def sample_reader(
    queries: dict[str, Callable[[], Any]],
    read_value: Callable[[Callable[[], Any]], Any] = lambda query: query(),
) -> Callable[..., Sample]:
    """A Sample reader: `read(bracket=True)` (a series' first and last reading) runs every
    query; `read()`, polled while the run goes on, skips the bracket-only ones (None)."""

    def read(bracket: bool = False) -> Sample:
        now = time.perf_counter()
        raw = {
            name: read_value(query)
            for name, query in queries.items()
            if bracket or name not in BRACKET_FIELDS
        }
        power, rates = raw.get("power_w"), raw.get("utilisation")
        return Sample(
            timestamp_s=now,
            sm_clock_mhz=raw.get("sm_clock_mhz"),
            mem_clock_mhz=raw.get("mem_clock_mhz"),
            power_w=power / 1000.0 if power is not None else None,
            energy_mj=raw.get("energy_mj"),
            temperature_c=raw.get("temperature_c"),
            gpu_util_pct=rates.gpu if rates is not None else None,
            mem_util_pct=rates.memory if rates is not None else None,
            mem_used_bytes=raw.get("mem_used_bytes"),
            throttle_reasons=raw.get("throttle_reasons"),
        )

    return read


def nvml_reader(device_index: int) -> Callable[..., Sample]:
    """A function reading one Sample of CUDA device `device_index` via NVML (already
    initialised); unsupported queries read as None."""
    import pynvml

    handle = nvml_handle(pynvml, torch.device("cuda", device_index))
    return sample_reader(nvml_queries(pynvml, handle), nvml_value)


class TelemetrySampler:
    """Polls a reader on a background thread between start() and stop().

    `device_index` None (a CPU run, or telemetry switched off: `off_reason` says which) or
    a failing NVML makes the sampler unavailable: `available` is False, `reason` says why
    (logged once), and start()/stop() do nothing. `reader` replaces NVML, e.g. to replay a
    recorded series; it is called with `bracket=True` for a series' first and last reading.
    """

    def __init__(
        self,
        device_index: int | None,
        interval_ms: float = 20.0,
        reader: Callable[..., Sample] | None = None,
        off_reason: str = "not a CUDA device",
    ) -> None:
        self.interval_s = interval_ms / 1000.0
        self.reason: str | None = None
        self._nvml = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._samples: list[Sample] = []
        self.read_s: list[float] = []  # time each reading of the series took
        if reader is None:
            reader = self._open_nvml(device_index, off_reason)
        self._read = reader
        if self._read is None:
            log.warning("GPU telemetry unavailable: %s", self.reason)

    @property
    def available(self) -> bool:
        """Whether start() will collect samples."""
        return self._read is not None

    def _open_nvml(self, device_index: int | None, off_reason: str) -> Callable[..., Sample] | None:
        if device_index is None:
            self.reason = off_reason
            return None
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as error:  # any failure means "no NVML here"
            self.reason = f"NVML: {error}"
            return None
        self._nvml = True
        try:
            return nvml_reader(device_index)
        except Exception as error:  # a device NVML cannot see
            self.reason = f"NVML: {error}"
            self.close()
            return None

    def _take(self, bracket: bool = False) -> None:
        """One reading; the polled ones (those taken while the run goes on) are timed."""
        read = self._read
        assert read is not None
        if bracket:
            self._samples.append(read(bracket=True))
            return
        begin = time.perf_counter()
        self._samples.append(read())
        self.read_s.append(time.perf_counter() - begin)

    def _poll(self) -> None:
        next_at = time.perf_counter() + self.interval_s
        while not self._stop.wait(max(0.0, next_at - time.perf_counter())):
            self._take()
            next_at += self.interval_s

    def start(self) -> None:
        """Begin a new series: one reading now, on the caller's thread, so the series starts
        before the run does; then one per interval on the background thread."""
        if not self.available:
            return
        if self._thread is not None:
            raise RuntimeError("telemetry sampler already started")
        self._samples, self.read_s = [], []
        self._stop.clear()
        self._take(bracket=True)
        self._thread = threading.Thread(target=self._poll, name="telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> list[Sample]:
        """End the series with one last reading and return it ([] when unavailable)."""
        if not self.available:
            return []
        if self._thread is None:
            raise RuntimeError("telemetry sampler stopped without start()")
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._take(bracket=True)
        return self._samples

    def overhead(self) -> dict[str, float | int | None]:
        """What sampling of the last series cost while the run went on: polled readings, their
        mean and total host time on the background thread (the first and last readings run
        on the caller's thread outside the run and are not counted)."""
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
        """Release NVML."""
        if self._nvml:
            import pynvml

            pynvml.nvmlShutdown()
            self._nvml = False

"""Series recorded (built) here, and readers of them that the telemetry poller process
loads by name ("tests.telemetry_replay:ramp"), so the sampler runs for real without NVML."""

from __future__ import annotations

import time
from collections.abc import Callable

from vlmprof.runtime.nvml_sample import Sample

STEP_S = 0.02
SLOW_READ_S = 0.05


def ramp_series(n: int = 51, counter: bool = True) -> list[Sample]:
    """Power rising linearly 100 -> 500 W over 1 s; the counter holds its exact integral."""
    samples = []
    for i in range(n):
        t = i * STEP_S
        power = 100.0 + 400.0 * t
        energy_mj = 5e6 + 1000.0 * (100.0 * t + 200.0 * t * t) if counter else None
        samples.append(Sample(t, power_w=power, energy_mj=energy_mj))
    return samples


def run_series(clock_mhz: float = 1980.0, reasons_at: dict[int, int] | None = None) -> list[Sample]:
    """A recorded run: 1 s at 20 ms, the SM clock dipping at 0.6 s, the memory clock down
    from 0.5 s to 0.9 s, temperature rising."""
    reasons_at = reasons_at or {}
    samples = []
    for i, base in enumerate(ramp_series()):
        t = base.timestamp_s
        samples.append(
            Sample(
                t,
                sm_clock_mhz=clock_mhz - (200.0 if i == 30 else 0.0),
                mem_clock_mhz=1593.0 if 25 <= i <= 45 else 2619.0,
                power_w=base.power_w,
                energy_mj=base.energy_mj,
                temperature_c=40.0 + 30.0 * t,
                throttle_reasons=reasons_at.get(i, 0),
            )
        )
    return samples


def _replay(series: list[Sample]) -> Callable[..., Sample]:
    """Each call returns the next sample, stamped with the time it was taken, as the NVML
    reader would (the series wraps around); without `with_counter` it has no counter."""
    reads = 0

    def read(with_counter: bool = True) -> Sample:
        nonlocal reads
        sample = series[reads % len(series)]
        reads += 1
        fields = sample.to_dict() | {"timestamp_s": time.perf_counter()}
        return Sample(**(fields if with_counter else fields | {"energy_mj": None}))

    return read


def ramp(_device: str) -> Callable[..., Sample]:
    """The recorded run of `run_series`, replayed."""
    return _replay(run_series())


def ramp_power_only(_device: str) -> Callable[..., Sample]:
    """Power only: a replay wraps around, which a cumulative counter never does."""
    return _replay(ramp_series(counter=False))


def steady(_device: str) -> Callable[..., Sample]:
    """A GPU at a steady 200 W whose counter says 300 W (its power reading is 2/3 of true),
    the counter counting from the first reading."""
    origin = time.perf_counter()

    def read(with_counter: bool = True) -> Sample:
        now = time.perf_counter()
        counter = round(300_000.0 * (now - origin)) if with_counter else None
        return Sample(now, power_w=200.0, energy_mj=counter)

    return read


def slow(_device: str) -> Callable[..., Sample]:
    """A reader that takes SLOW_READ_S per reading, like a slow NVML query."""
    read = _replay(ramp_series())

    def slow_read(with_counter: bool = True) -> Sample:
        sample = read(with_counter)
        time.sleep(SLOW_READ_S)
        return sample

    return slow_read


def failing(_device: str) -> Callable[..., Sample]:
    """A reader that cannot be built, as on a machine without NVML."""
    raise RuntimeError("no NVML on this machine")

"""One telemetry sample: what NVML is asked, how a reading becomes a Sample, and the
fixed-size record the polling process writes it as.

Nothing here imports torch: the poller process (`vlmprof.runtime.nvml_poller`) starts in a
fraction of a second and holds no CUDA context.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any


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


def nvml_value(read: Callable[[], Any]) -> Any:
    """One NVML reading; None when the GPU does not support the query."""
    import pynvml

    try:
        return read()
    except pynvml.NVMLError:
        return None


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
) -> Callable[[], Sample]:
    """A function taking one Sample: every query in order (the energy counter only with
    `with_counter`), stamped with the time it began."""

    def read(with_counter: bool = True) -> Sample:
        now = time.perf_counter()
        raw = {
            name: read_value(query)
            for name, query in queries.items()
            if with_counter or name != "energy_mj"
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


def nvml_reader(device: str) -> Callable[..., Sample]:
    """Initialise NVML and return a reader of the GPU `device` (a UUID, "GPU-...", or an
    index); unsupported queries read as None."""
    import pynvml

    pynvml.nvmlInit()
    return sample_reader(nvml_queries(pynvml, device_handle(pynvml, device)), nvml_value)


def device_handle(pynvml: Any, device: str) -> Any:
    """NVML's handle of `device`: a UUID ("GPU-...") or an index as text."""
    if device.startswith("GPU-"):
        return pynvml.nvmlDeviceGetHandleByUUID(device)
    return pynvml.nvmlDeviceGetHandleByIndex(int(device))


# A record: the Sample's fields in order, then the reading's own duration in seconds, as
# little-endian doubles (None as NaN). Integers up to 2**53 survive the round trip.
_FIELDS = tuple(f.name for f in fields(Sample))
_INTEGER_FIELDS = frozenset({"energy_mj", "mem_used_bytes", "throttle_reasons"})
RECORD = struct.Struct(f"<{len(_FIELDS) + 1}d")


def encode(sample: Sample, read_s: float) -> bytes:
    """One fixed-size record of `sample` and the time its reading took."""
    values = [getattr(sample, name) for name in _FIELDS]
    return RECORD.pack(*(math.nan if v is None else float(v) for v in values), read_s)


def decode(data: bytes) -> list[tuple[Sample, float]]:
    """The whole records in `data` as (Sample, read seconds); a trailing part is ignored."""
    result = []
    for offset in range(0, len(data) - RECORD.size + 1, RECORD.size):
        *values, read_s = RECORD.unpack_from(data, offset)
        kwargs: dict[str, Any] = {}
        for name, value in zip(_FIELDS, values, strict=True):
            if math.isnan(value):
                kwargs[name] = None
            else:
                kwargs[name] = int(value) if name in _INTEGER_FIELDS else value
        result.append((Sample(**kwargs), read_s))
    return result

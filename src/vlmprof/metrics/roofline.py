"""The roofline, once: the time a stage's work needs at peak compute or at peak bandwidth,
whichever is longer (its bound), the rate that bound allows (attainable) and how many times
the measured time is above it (distance, = 1 / max(MFU, MBU)).

Each stage carries two byte figures. The necessary bytes (weights, KV cache read and
written, the inputs and outputs of matmul-class ops: the least any implementation moves)
set the bound, the intensity and MBU. The bytes as implemented (every op's reads and writes,
counted on the real modules, `vlmprof.flops.counted_bytes`: what Nsight Compute's DRAM bytes
are checked against) stand beside them, so traffic an implementation adds or removes shows
without moving the bound.

Aggregation writes these into metrics.json (`roofline`, and `mbu.decode_roofline` per decode
step); the report and the variant comparison only read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The two peaks every utilisation figure is divided by, by their column name.
PEAK_COLUMNS: tuple[str, ...] = ("datasheet", "calibrated")
# The roof of work without a byte count (or of a peak without bandwidth): compute alone, so
# its distance is an upper limit.
NO_BYTES = "compute (bytes not counted)"
# What each byte figure counts, as metrics.json and the report label them.
BYTES_NECESSARY = (
    "necessary bytes: weights read, KV cache read and written, inputs and outputs of the "
    "matmul-class ops (the least any implementation moves; MBU and the bound divide by them)"
)
BYTES_AS_IMPLEMENTED = (
    "bytes as implemented: every op's reads and writes, counted op by op on the real modules "
    "over one untimed run of each page (caches not modelled; what Nsight Compute's DRAM bytes "
    "are checked against); None where the records carry no such count"
)


@dataclass(frozen=True)
class Bound:
    """The time (ms) a stage's work needs at a peak and the roof that sets it."""

    ms: float
    roof: str  # "compute", "memory" or NO_BYTES


def peaks_by_column(peaks: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The datasheet and calibrated entries of `resolve_peaks`' output by column name."""
    return {"datasheet": peaks["reference"], "calibrated": peaks["calibrated"]}


def bound(flops: float, moved: float | None, peak: Mapping[str, Any]) -> Bound | None:
    """The bound of `flops` FLOPs moving `moved` bytes (None: not counted) at `peak`
    (`tflops`, `tbps`); None without a compute peak or without work."""
    if not peak.get("tflops") or flops <= 0:
        return None
    compute_ms = flops / (peak["tflops"] * 1e12) * 1e3
    if moved is None or not peak.get("tbps"):
        return Bound(compute_ms, NO_BYTES)
    memory_ms = moved / (peak["tbps"] * 1e12) * 1e3
    return Bound(compute_ms, "compute") if compute_ms >= memory_ms else Bound(memory_ms, "memory")


def against_peak(
    flops: float, moved: float | None, time_ms: float, peak: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Bound (roof and ms), attainable rate (TFLOP/s) and distance of work measured at
    `time_ms` against one peak; None where `bound` is."""
    found = bound(flops, moved, peak)
    if found is None:
        return None
    return {
        "bound": found.roof,
        "bound_ms": found.ms,
        "attainable_tflops": flops / found.ms / 1e9,
        "distance": time_ms / found.ms,
        "bytes_counted": found.roof != NO_BYTES,
    }


def _per(total: float | None, count: float) -> float | None:
    return None if total is None else total / count


def stage_roofline(
    flops_total: float,
    bytes_total: float | None,
    time_ms_total: float,
    records: int,
    peaks: Mapping[str, Any],
    bytes_as_implemented_total: float | None = None,
) -> dict[str, Any]:
    """One stage over the ok records that timed it: summed work and time, intensity
    (FLOP/byte) of the necessary bytes (`bytes_total`) and of the bytes as implemented,
    achieved rate (TFLOP/s) and, per peak column, `against_peak` (of the necessary bytes)."""
    implemented = bytes_as_implemented_total
    entry: dict[str, Any] = {
        "flops_total": flops_total,
        "bytes_necessary_total": bytes_total,
        "bytes_as_implemented_total": implemented,
        "time_ms_total": time_ms_total,
        "records": records,
        "flops_per_run": flops_total / records,
        "bytes_necessary_per_run": _per(bytes_total, records),
        "bytes_as_implemented_per_run": _per(implemented, records),
        "intensity_necessary": flops_total / bytes_total if bytes_total else None,
        "intensity_as_implemented": flops_total / implemented if implemented else None,
        "achieved_tflops": flops_total / time_ms_total / 1e9,
    }
    for column, peak in peaks_by_column(peaks).items():
        entry[column] = against_peak(flops_total, bytes_total, time_ms_total, peak)
    return entry


def page_roofline(
    prefill: Mapping[str, Any], decode: Mapping[str, Any], time_ms_total: float, records: int
) -> dict[str, Any]:
    """A page's prefill + decode: its bound at each peak is prefill's plus decode's (from
    their `stage_roofline`), its distance the page time over that sum."""
    entry: dict[str, Any] = {"time_ms_total": time_ms_total, "records": records}
    for column in PEAK_COLUMNS:
        first, second = prefill.get(column), decode.get(column)
        if first is None or second is None:
            entry[column] = None
            continue
        bound_ms = first["bound_ms"] + second["bound_ms"]
        entry[column] = {
            "bound": f"prefill {first['bound']} + decode {second['bound']}",
            "bound_ms": bound_ms,
            "distance": time_ms_total / bound_ms,
            "bytes_counted": first["bytes_counted"] and second["bytes_counted"],
        }
    return entry


def decode_step_roofline(
    bytes_total: float,
    time_ms_total: float,
    steps: float,
    peaks: Mapping[str, Any],
    bytes_as_implemented_total: float | None = None,
) -> dict[str, Any]:
    """The necessary bytes of one decode step (`bytes_total` over `steps`) and the step time
    they allow at each peak's bandwidth, beside the measured time per step and the step's
    bytes as implemented."""
    if steps == 0:
        empty = ("bytes_necessary_per_token", "bytes_as_implemented_per_token")
        return dict.fromkeys(empty) | {"ms_per_token_measured": None} | {
            f"ms_per_token_at_{column}_bw": None for column in PEAK_COLUMNS
        }
    bytes_per_token = bytes_total / steps
    roofline = {
        "bytes_necessary_per_token": bytes_per_token,
        "bytes_as_implemented_per_token": _per(bytes_as_implemented_total, steps),
        "ms_per_token_measured": time_ms_total / steps,
    }
    for column, peak in peaks_by_column(peaks).items():
        tbps = peak["tbps"]
        roofline[f"ms_per_token_at_{column}_bw"] = (
            bytes_per_token / (tbps * 1e12) * 1000.0 if tbps else None
        )
    return roofline

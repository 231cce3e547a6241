"""The busy fraction a reader is quoted, and how it was obtained.

Against the timing pass where metrics.json's timeline has it (`vlmprof.metrics.dilation`),
else the profiler pass's own figure, labelled as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pass_speed(dilation: float) -> str:
    """How much slower (or faster) the profiler pass ran than the timing pass, in words."""
    if dilation >= 1.0:
        return f"the profiler pass ran {dilation:.1f}x slower"
    return f"the profiler pass ran {1.0 / dilation:.1f}x faster"


def quoted_fraction(entry: Mapping[str, Any]) -> float:
    """A timeline stage's busy fraction against the timed stage, else under the profiler."""
    timed = entry.get("busy_fraction_timed")
    return entry["busy_fraction"] if timed is None else timed


def busy_basis(dilation: float | None, capped: bool) -> str:
    """How a quoted busy fraction was obtained (to follow "busy is"); `dilation` None: the
    profiler pass's own figure."""
    if dilation is None:
        return "kernel time over the profiler pass's own stage time, which the profiler slows"
    how = (
        "kernel time from the profiler pass over the timing pass's stage time, and "
        f"{pass_speed(dilation)}"
    )
    if capped:
        how += "; capped at 100%: the profiled kernels outlast the timed stage"
    return how


def quoted_busy(entry: Mapping[str, Any]) -> tuple[float, str]:
    """A timeline stage's quoted busy fraction and how it was obtained."""
    timed = entry.get("busy_fraction_timed") is not None
    dilation = entry.get("dilation") if timed else None
    return quoted_fraction(entry), busy_basis(dilation, bool(entry.get("busy_fraction_capped")))


def quoted_verdict(entry: Mapping[str, Any]) -> str:
    """A timeline stage's launch-bound verdict, judged on the quoted busy fraction."""
    return entry.get("verdict_timed") or entry["verdict"]

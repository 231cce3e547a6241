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


def quoted_busy(entry: Mapping[str, Any]) -> tuple[float, str]:
    """A timeline stage's busy fraction and a clause saying how it was obtained (to follow
    "busy is")."""
    if entry.get("busy_fraction_timed") is None:
        return entry["busy_fraction"], (
            "kernel time over the profiler pass's own stage time, which the profiler slows"
        )
    speed = pass_speed(entry["dilation"])
    how = f"kernel time from the profiler pass over the timing pass's stage time, and {speed}"
    if entry.get("busy_fraction_capped"):
        how += "; capped at 100%: the profiled kernels outlast the timed stage"
    return entry["busy_fraction_timed"], how


def quoted_verdict(entry: Mapping[str, Any]) -> str:
    """A timeline stage's launch-bound verdict, judged on the quoted busy fraction."""
    return entry.get("verdict_timed") or entry["verdict"]

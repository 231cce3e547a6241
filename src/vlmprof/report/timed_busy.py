"""The busy fraction a reader is quoted, and how it was obtained.

Against the timing pass where metrics.json's timeline has it (`vlmprof.metrics.dilation`),
else the profiler pass's own figure, labelled as such.
"""

from __future__ import annotations

from vlmprof.metrics.document import TimelineStage


def pass_speed(dilation: float) -> str:
    """How much slower (or faster) the profiler pass ran than the timing pass, in words."""
    if dilation >= 1.0:
        return f"the profiler pass ran {dilation:.1f}x slower"
    return f"the profiler pass ran {1.0 / dilation:.1f}x faster"


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


def quoted_dilation(entry: TimelineStage) -> float | None:
    """The dilation behind a timeline stage's quoted busy fraction; None where that fraction
    is the profiler pass's own."""
    return None if entry.busy_fraction_timed is None else entry.dilation


def quoted_busy(entry: TimelineStage) -> tuple[float | None, str]:
    """A timeline stage's quoted busy fraction and how it was obtained."""
    basis = busy_basis(quoted_dilation(entry), bool(entry.busy_fraction_capped))
    return entry.quoted_busy_fraction(), basis


def quoted_verdict(entry: TimelineStage) -> str | None:
    """A timeline stage's launch-bound verdict, judged on the quoted busy fraction."""
    return entry.verdict_timed or entry.verdict

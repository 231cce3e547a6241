"""What the host did during a run: the run thread's CPU time and involuntary context
switches, and the machine's CPU steal time.

Stages launched from Python one kernel at a time run at the host's pace. When such a
stage is slow in one repeat, these counters say whether the host was the cause: a thread
that waited off-CPU (busy fraction below 1), was preempted (involuntary switches), or ran
on virtual CPUs the hypervisor gave to another guest (steal).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
STEAL_COLUMN = 8  # "cpu user nice system idle iowait irq softirq steal ..."


@dataclass(frozen=True)
class HostReading:
    """Counters at one instant; steal is None where /proc/stat has no steal column."""

    wall_s: float
    thread_cpu_s: float
    involuntary_switches: int
    steal_ticks: int | None


def _steal_ticks(stat: Path) -> int | None:
    """Machine-wide steal time in clock ticks (all CPUs), from the first line of /proc/stat."""
    try:
        fields = stat.read_text(encoding="ascii").split("\n", 1)[0].split()
        return int(fields[STEAL_COLUMN])
    except (OSError, IndexError, ValueError):
        return None


def read_host(stat: Path = PROC_STAT) -> HostReading:
    """The calling thread's counters and the machine's steal time now."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return HostReading(
        wall_s=time.perf_counter(),
        thread_cpu_s=time.thread_time(),
        involuntary_switches=usage.ru_nivcsw,
        steal_ticks=_steal_ticks(stat),
    )


def host_delta(before: HostReading, after: HostReading) -> dict[str, float | int | None]:
    """A run's host figures between two readings on its thread.

    `busy_fraction` is the thread's CPU time over wall time (near 1 for a launch-bound run,
    lower where it waited on the device); `steal_ms` is summed over all CPUs, so it is
    divided by the CPU count into `steal_ms_per_cpu`.
    """
    wall = after.wall_s - before.wall_s
    cpu = after.thread_cpu_s - before.thread_cpu_s
    steal_ms = None
    if before.steal_ticks is not None and after.steal_ticks is not None:
        steal_ms = (after.steal_ticks - before.steal_ticks) * 1000.0 / os.sysconf("SC_CLK_TCK")
    cpus = os.cpu_count() or 1
    return {
        "wall_ms": round(wall * 1000.0, 3),
        "thread_cpu_ms": round(cpu * 1000.0, 3),
        "busy_fraction": round(cpu / wall, 4) if wall > 0 else None,
        "involuntary_switches": after.involuntary_switches - before.involuntary_switches,
        "steal_ms": steal_ms,
        "steal_ms_per_cpu": None if steal_ms is None else round(steal_ms / cpus, 3),
    }

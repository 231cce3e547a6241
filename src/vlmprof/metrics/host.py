"""The `host` section of metrics.json: what the host did during the timed runs.

Each run record keeps its run thread's busy fraction, involuntary context switches and the
machine's CPU steal (`vlmprof.runtime.host_counters`). Summed up here, they tell a reader
whether repeat-to-repeat variation of host-launched stages came from scheduling, from the
hypervisor, or from a CPU that simply ran slower.
"""

from __future__ import annotations

from typing import Any

from vlmprof.metrics.document import Host
from vlmprof.metrics.stats import finite_values, summarize

# A run thread on a CPU less than this fraction of the run was held off it for a while.
BUSY_FLOOR = 0.97
# Steal above this fraction of a vCPU over the run means the hypervisor ran another guest.
STEAL_FLOOR = 0.01


def host_section(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and extremes of the runs' host figures; `runs` 0 where none was kept."""
    hosts = [r["host"] for r in records if r.get("status") == "ok" and r.get("host")]
    busy_values = finite_values(h.get("busy_fraction") for h in hosts)
    busy = summarize(busy_values)
    switches = summarize(h["involuntary_switches"] for h in hosts)
    steal_fractions = [
        h["steal_ms_per_cpu"] / h["wall_ms"]
        for h in hosts
        if h.get("steal_ms_per_cpu") is not None and h.get("wall_ms")
    ]
    steal = summarize(steal_fractions)
    return {
        "runs": len(hosts),
        "busy_fraction_median": busy["p50"],
        "busy_fraction_min": busy["min"],
        "involuntary_switches_median": switches["p50"],
        "involuntary_switches_max": switches["max"],
        "steal_fraction_median": steal["p50"],
        "steal_fraction_max": steal["max"],
        "runs_held_off_cpu": int((busy_values < BUSY_FLOOR).sum()),
        "runs_with_steal": sum(s > STEAL_FLOOR for s in steal_fractions),
    }


def host_sentence(section: Host | None) -> str:
    """One paragraph for the report's repeatability section (`section` None: the run's
    metrics.json predates host figures)."""
    if section is None or not section.runs:
        return "No run record of this run keeps host figures."
    steal = section.steal_fraction_median
    stolen = (
        "no steal figures (no /proc/stat)"
        if steal is None
        else f"{100 * steal:.2f}% of each vCPU stolen by the hypervisor "
        f"(median; at most {100 * section.steal_fraction_max:.2f}%)"
    )
    text = (
        f"Over {section.runs} runs the run thread was on a CPU "
        f"{100 * section.busy_fraction_median:.1f}% of the time (median; lowest "
        f"{100 * section.busy_fraction_min:.1f}%), with "
        f"{section.involuntary_switches_median:g} involuntary context switches per run "
        f"(median) and {stolen}. "
    )
    if section.runs_held_off_cpu or section.runs_with_steal:
        return text + (
            f"{section.runs_held_off_cpu} runs spent over {100 * (1 - BUSY_FLOOR):g}% off "
            f"the CPU (descheduled, or waiting on the device in a blocking synchronise) and "
            f"{section.runs_with_steal} lost over {100 * STEAL_FLOOR:g}% to steal: where "
            "they are host-launched, their stage times are suspect."
        )
    return text + (
        "The host neither descheduled the run nor lost it to other guests, so any repeat-to-"
        "repeat variation of host-launched stages came from how fast the CPU ran."
    )

"""The host section of metrics.json, from run records built here."""

from __future__ import annotations

import pytest

from vlmprof.metrics.document import Host
from vlmprof.metrics.host import host_section, host_sentence
from vlmprof.typed_json import read_as


def sentence(section: dict) -> str:
    """The sentence of a built host section, as the report reads it from metrics.json."""
    return host_sentence(read_as(Host, section, "host"))


def record(busy: float, switches: int, steal_ms_per_cpu: float | None, status: str = "ok"):
    host = {
        "wall_ms": 1000.0,
        "thread_cpu_ms": 1000.0 * busy,
        "busy_fraction": busy,
        "involuntary_switches": switches,
        "steal_ms": None if steal_ms_per_cpu is None else 16 * steal_ms_per_cpu,
        "steal_ms_per_cpu": steal_ms_per_cpu,
    }
    return {"status": status, "host": host}


def test_a_quiet_host_points_at_the_cpus_speed():
    records = [record(0.999, 8, 1.0), record(0.995, 12, 2.0), record(0.990, 4, 0.0)]
    records.append(record(0.5, 900, 500.0, status="error"))  # failed runs do not count
    records.append({"status": "ok", "host": None})  # a record from before host figures
    section = host_section(records)
    assert section["runs"] == 3
    assert section["busy_fraction_median"] == 0.995 and section["busy_fraction_min"] == 0.99
    assert section["involuntary_switches_median"] == 8
    assert section["steal_fraction_median"] == pytest.approx(0.001)
    assert section["runs_held_off_cpu"] == section["runs_with_steal"] == 0
    text = sentence(section)
    assert "on a CPU 99.5% of the time" in text and "how fast the CPU ran" in text


def test_descheduled_or_stolen_runs_are_named():
    section = host_section([record(0.999, 8, 1.0), record(0.90, 300, 1.0), record(1.0, 5, 40.0)])
    assert section["runs_held_off_cpu"] == 1 and section["runs_with_steal"] == 1
    assert "suspect" in sentence(section)


def test_without_host_figures_the_section_says_so():
    section = host_section([{"status": "ok", "host": None}])
    assert section["runs"] == 0
    assert sentence(section) == "No run record of this run keeps host figures."
    no_steal = host_section([record(0.999, 8, None)])
    assert no_steal["steal_fraction_median"] is None
    assert "no steal figures" in sentence(no_steal)

"""Host counters of a run: steal time from a /proc/stat written here, and the run thread's
own CPU time and context switches."""

from __future__ import annotations

import os
import time

import pytest

from vlmprof.runtime.host_counters import HostReading, host_delta, read_host

STAT = "cpu  4705 150 1120 16250 520 0 25 {steal} 0 0\ncpu0 2000 70 500 8000 300 0 10 40 0 0\n"


def test_steal_is_read_from_the_machine_line_and_scaled_to_ms(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(STAT.format(steal=300))
    before = read_host(stat)
    stat.write_text(STAT.format(steal=350))
    after = read_host(stat)
    assert (before.steal_ticks, after.steal_ticks) == (300, 350)
    delta = host_delta(before, after)
    assert delta["steal_ms"] == pytest.approx(50 * 1000.0 / os.sysconf("SC_CLK_TCK"))
    assert delta["steal_ms_per_cpu"] == pytest.approx(delta["steal_ms"] / os.cpu_count(), abs=1e-3)


def test_a_machine_without_steal_counts_reads_none(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  4705 150 1120\n")
    assert read_host(stat).steal_ticks is None
    assert read_host(tmp_path / "missing").steal_ticks is None
    reading = read_host(tmp_path / "missing")
    assert host_delta(reading, reading)["steal_ms"] is None


def test_busy_fraction_tells_computing_from_waiting():
    before = read_host()
    deadline = time.perf_counter() + 0.1
    while time.perf_counter() < deadline:  # on the CPU
        pass
    busy = host_delta(before, read_host())
    before = read_host()
    time.sleep(0.1)  # off the CPU
    idle = host_delta(before, read_host())
    assert busy["busy_fraction"] > 0.5 > idle["busy_fraction"]
    assert busy["wall_ms"] >= 100.0 and busy["involuntary_switches"] >= 0


def test_delta_of_fixed_readings():
    before = HostReading(wall_s=1.0, thread_cpu_s=0.5, involuntary_switches=3, steal_ticks=None)
    after = HostReading(wall_s=3.0, thread_cpu_s=2.0, involuntary_switches=10, steal_ticks=None)
    delta = host_delta(before, after)
    assert delta["wall_ms"] == 2000.0 and delta["thread_cpu_ms"] == 1500.0
    assert delta["busy_fraction"] == 0.75 and delta["involuntary_switches"] == 7

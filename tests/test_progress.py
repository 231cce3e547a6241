"""The progress reporter: its lines, their rate limit and the expected remaining time."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest

from vlmprof.progress import Progress, clock_text, job_label


class SteppedClock:
    """A clock that reads the given times in turn (the reporter's start first)."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


def _run(total: int, times: list[float], interval_s: float = 5.0) -> list[str]:
    """Step a reporter `len(times) - 1` times at `times[1:]`; the lines it wrote."""
    stream = io.StringIO()
    progress = Progress(
        "job", total, stream=stream, clock=SteppedClock(*times), interval_s=interval_s
    )
    for index in range(1, len(times)):
        progress.step(f"page {index}/{total}")
    return stream.getvalue().splitlines()


def test_line_gives_position_elapsed_and_remaining_from_the_mean_step():
    # One step of four took 10 s: three more should take 30 s.
    assert _run(4, [100.0, 110.0]) == ["[job] page 1/4: 00:10 elapsed, ~00:30 left"]


def test_first_and_last_step_are_always_written_and_others_at_most_one_per_interval():
    lines = _run(6, [0.0, 1.0, 2.0, 3.0, 6.5, 7.0, 8.0])
    assert [line.split(":")[0] for line in lines] == [
        "[job] page 1/6",  # the first
        "[job] page 4/6",  # 5.5 s after the first line
        "[job] page 6/6",  # the last, 1.5 s after the one before
    ]
    assert lines[-1] == "[job] page 6/6: 00:08 elapsed, ~00:00 left"


def test_a_fast_run_writes_only_the_first_and_last_line():
    times = [0.0, *(0.01 * step for step in range(1, 101))]
    assert len(_run(100, times)) == 2


def test_several_steps_at_once_count_towards_the_mean():
    # A page that failed counts its three repeats: 3 of 9 steps in 6 s leave 12 s.
    stream = io.StringIO()
    progress = Progress("shard", 9, stream=stream, clock=SteppedClock(0.0, 6.0))
    progress.step("page 1/3 (bad) unreadable", 3)
    assert stream.getvalue() == "[shard] page 1/3 (bad) unreadable: 00:06 elapsed, ~00:12 left\n"


def test_the_log_file_gets_the_same_line(caplog: pytest.LogCaptureFixture):
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="vlmprof.progress"):
        Progress("shard", 2, stream=stream, clock=SteppedClock(0.0, 1.0)).step("page 1/2")
    assert [record.getMessage() for record in caplog.records] == stream.getvalue().splitlines()


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "00:00"), (59.6, "01:00"), (754, "12:34"), (3725, "1:02:05")]
)
def test_clock_text(seconds: float, text: str):
    assert clock_text(seconds) == text


def test_job_label_names_the_arm_of_another_arms_job():
    assert job_label("operator pass", SimpleNamespace(shard="0")) == "operator pass"
    assert job_label("FLOP count", SimpleNamespace(arm="")) == "FLOP count"
    assert job_label("FLOP count", SimpleNamespace(arm="variants/grouped/")) == (
        "FLOP count, variants/grouped"
    )
    assert job_label("profile shard 0", SimpleNamespace(arm="models/got/", shard="0")) == (
        "profile shard 0, models/got"
    )

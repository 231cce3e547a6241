"""The stage timer on the CPU clock: laps share their boundary marks, and the run's
window ends at the device's finish, before the marks are read back."""

from __future__ import annotations

import time

from PIL import Image

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer


class CountingTimer(StageTimer):
    """A CPU stage timer that counts the marks it takes."""

    def __init__(self) -> None:
        super().__init__("cpu")
        self.marks = 0

    def _mark(self) -> object:
        self.marks += 1
        return super()._mark()


def test_laps_time_each_iteration_back_to_back():
    timer = StageTimer("cpu")
    with timer.stage("loop"):
        lap = timer.laps("step")
        for pause_s in (0.0, 0.02, 0.0):
            time.sleep(pause_s)
            lap()
    times = timer.finish()
    assert len(times["step"]) == 3
    assert times["step"][1] >= 20.0 > max(times["step"][0], times["step"][2])
    # Back to back: the laps cover the loop from the first mark to the last.
    assert 20.0 <= sum(times["step"]) <= times["loop"][0]


def test_a_laps_run_of_n_intervals_takes_n_plus_one_marks():
    timer = CountingTimer()
    lap = timer.laps("step")
    for _ in range(5):
        lap()
    assert timer.marks == 6 and len(timer.finish()["step"]) == 5


def test_a_generation_marks_each_decode_step_once():
    adapter = build_adapter(ModelSpec(preset="small", mode="tiny"))
    inputs = adapter.preprocess(Image.new("RGB", (640, 640), "white"))
    timer = CountingTimer()
    greedy_generate(adapter, inputs, 6, Instruments(timer, NvtxRanges(enabled=False)))
    times = timer.finish()
    assert len(times["decode_step"]) == 5
    # ttft, prefill and decode take two marks each; the 5 steps take 6, not 10.
    assert timer.marks == 3 * 2 + 6
    assert sum(times["decode_step"]) <= times["decode"][0]

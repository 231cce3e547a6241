"""The stage timer on CUDA: events come back to a pool, and a second GPU is timed on its
own stream whichever GPU is current. Skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

from vlmprof.runtime.stage_timer import StageTimer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _timed_matmuls(device: str, n: int = 2048, repeats: int = 20) -> StageTimer:
    a = torch.randn(n, n, device=device)
    timer = StageTimer(device)
    with timer.stage("work"):
        for _ in range(repeats):
            a = a @ a / n
    timer.finish()
    return timer


@cuda
def test_events_are_reused_by_the_next_timer():
    first = StageTimer("cuda")
    for _ in range(3):
        with first.stage("step"):
            torch.ones(1, device="cuda").add_(1)
    first.finish()
    recorded = {id(e) for e in first._free}
    second = StageTimer("cuda")
    with second.stage("step"):
        pass
    assert len(recorded) >= 6
    used = {id(interval.start) for interval in second._intervals}
    assert used <= recorded
    assert second.finish()["step"][0] >= 0.0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_work_on_a_second_gpu_is_timed_there_while_gpu_0_is_current():
    torch.cuda.set_device(0)
    on_own_gpu = _timed_matmuls("cuda:0").total_ms("work")
    torch.cuda.set_device(0)
    on_second = _timed_matmuls("cuda:1").total_ms("work")
    assert on_own_gpu is not None and on_second is not None
    # Marks on GPU 0's idle stream would measure only the host's launches.
    assert on_second > 0.5 * on_own_gpu

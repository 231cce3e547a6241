"""The stage timer on CUDA: laps time the kernels between them, and work on a second GPU
is timed on that GPU's own stream, whichever GPU is current. Skipped without the GPUs."""

from __future__ import annotations

import pytest
import torch

from vlmprof.runtime.stage_timer import StageTimer

# A kernel that spins this many GPU clock cycles: 25 ms or more at up to 2 GHz, while
# launching it takes the host microseconds.
SPIN_CYCLES = 50_000_000


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_work_on_a_second_gpu_is_timed_there_while_gpu_0_is_current():
    torch.cuda.set_device(0)
    with torch.cuda.device(1):
        torch.cuda._sleep(1)  # load the kernel before timing
    torch.cuda.synchronize(1)
    timer = StageTimer("cuda:1")
    with timer.stage("spin"), torch.cuda.device(1):
        torch.cuda._sleep(SPIN_CYCLES)
    # Marks on GPU 0's idle stream would measure only the launch, well under a millisecond.
    assert timer.finish()["spin"][0] > 10.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_laps_on_cuda_time_each_iterations_kernels():
    torch.cuda._sleep(1)  # load the kernel before timing
    torch.cuda.synchronize()
    timer = StageTimer("cuda")
    lap = timer.laps("step")
    for cycles in (1, SPIN_CYCLES, 1):
        torch.cuda._sleep(cycles)
        lap()
    short, spin, after = timer.finish()["step"]
    # The host marks the laps microseconds apart; the events sit between the kernels.
    assert spin > 10.0 and short < 1.0 and after < 1.0

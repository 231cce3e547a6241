"""GPU slot pinning: concurrent jobs get distinct devices, and slots free up on exit."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch

from vlmprof.runtime.gpu_slot import claim_device


def _hold(lock_dir: str, started, release, results) -> None:
    with claim_device("cuda", visible_gpus=2, lock_dir=Path(lock_dir)) as device:
        results.put(device)
        started.set()
        release.wait(20)


def test_two_jobs_get_two_gpus_and_a_third_waits_for_a_free_one(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    results, release = ctx.Queue(), ctx.Event()
    jobs = []
    for _ in range(2):
        started = ctx.Event()
        job = ctx.Process(target=_hold, args=(str(tmp_path), started, release, results))
        job.start()
        assert started.wait(30)
        jobs.append(job)
    assert {results.get(timeout=5), results.get(timeout=5)} == {"cuda:0", "cuda:1"}
    release.set()
    for job in jobs:
        job.join(30)
    with claim_device("cuda", visible_gpus=2, lock_dir=tmp_path) as device:
        assert device == "cuda:0"


def test_killed_job_releases_its_gpu(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    results, release, started = ctx.Queue(), ctx.Event(), ctx.Event()
    job = ctx.Process(target=_hold, args=(str(tmp_path), started, release, results))
    job.start()
    assert started.wait(30)
    assert results.get(timeout=5) == "cuda:0"
    job.kill()
    job.join(10)
    with claim_device("cuda", visible_gpus=2, lock_dir=tmp_path) as device:
        assert device == "cuda:0"


def test_cpu_and_explicit_devices_are_not_pinned(tmp_path: Path):
    for device in ("cpu", "cuda:1"):
        with claim_device(device, visible_gpus=4, lock_dir=tmp_path) as got:
            assert got == device
    with claim_device("cuda", visible_gpus=1, lock_dir=tmp_path) as got:
        assert got == "cuda"


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_claimed_gpu_becomes_the_current_device(tmp_path: Path):
    torch.cuda.set_device(0)
    with (
        claim_device("cuda", visible_gpus=2, lock_dir=tmp_path),
        claim_device("cuda", visible_gpus=2, lock_dir=tmp_path) as second,
    ):
        assert second == "cuda:1"
        assert torch.cuda.current_device() == 1

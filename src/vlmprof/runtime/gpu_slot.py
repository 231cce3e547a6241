"""Pinning each GPU job to its own device on a multi-GPU host, without races.

Snakemake's `--resources gpu=N` only caps how many GPU jobs run at once; it never says
which GPU a job gets. Each job therefore takes an exclusive `flock` on one slot file per
visible GPU and uses the first slot it wins. The kernel releases the lock when the job
ends, even if it is killed, so a crashed job never strands a GPU. A job that already sees
exactly one GPU (a cluster that set CUDA_VISIBLE_DEVICES) simply uses it.

The claimed GPU is also made the job's current CUDA device, so every call that takes the
current device by default (streams, events, synchronisation, memory statistics) refers to
the GPU the model is on, not to GPU 0.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

DEFAULT_LOCK_DIR = Path(tempfile.gettempdir()) / "vlmprof-gpu-slots"


def _make_current(device: str) -> None:
    """Make an indexed CUDA device (cuda:N) that exists the current one; others are left
    alone (an index past the GPUs present fails where the model is placed on it)."""
    if device.startswith("cuda:") and torch.device(device).index < torch.cuda.device_count():
        torch.cuda.set_device(torch.device(device))


@contextmanager
def claim_device(
    device: str,
    visible_gpus: int | None = None,
    lock_dir: Path = DEFAULT_LOCK_DIR,
    poll_s: float = 0.5,
) -> Iterator[str]:
    """Yield the device this job should use, holding its slot lock for the job's lifetime.

    Only a bare `cuda` is pinned; `cpu` and an explicit `cuda:N` are used as given. A
    `cuda:N` (claimed or given) becomes the current CUDA device.
    """
    count = torch.cuda.device_count() if visible_gpus is None else visible_gpus
    if device != "cuda" or count <= 1:
        _make_current(device)
        yield device
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all").replace(",", "-")
    while True:
        for index in range(count):
            handle = open(lock_dir / f"gpu-{visible}-{index}.lock", "w")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                _make_current(f"cuda:{index}")
                yield f"cuda:{index}"
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(poll_s)

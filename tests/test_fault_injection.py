"""A profiling job killed mid-run: the restarted workflow completes with every record once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.workflow_helpers import (
    FAST_CONFIG,
    SNAKEMAKE,
    copy_workflow,
    snakemake,
    snakemake_env,
    write_config,
)

pytestmark = pytest.mark.slow

# One page a shard, once, of a few tokens: a shard's records file is open (as its temporary
# file) from before its first page until its last, which is the moment the kill needs.
CONFIG = {
    **FAST_CONFIG,
    "run_name": "killed",
    "subset": {"n": 2},
    "shards": 2,
    "repeats": 1,
    "max_new_tokens": 3,
    "operators": {"enabled": False},
}
# The shards' records: what a restart must keep or redo (the jobs after them read the
# records whole, as after any run).
TARGETS = ["results/killed/runs/shard-0.jsonl", "results/killed/runs/shard-1.jsonl"]


def _wait_for(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.2)


def test_killed_shard_is_redone_and_finished_shard_reused(tmp_path: Path):
    workdir = copy_workflow(tmp_path)
    config = str(write_config(workdir, CONFIG))
    runs = workdir / "results" / "killed" / "runs"
    first = subprocess.Popen(
        [SNAKEMAKE, "--cores", "1", "--resources", "gpu=1", "--configfile", config, "--", *TARGETS],
        cwd=workdir,
        env=snakemake_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Kill while one shard is complete and the other is writing its records.
        _wait_for(
            lambda: (
                any((runs / f"shard-{i}.jsonl").exists() for i in (0, 1))
                and any(runs.glob(".shard-*.tmp"))
            ),
            timeout_s=300,
        )
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        first.wait(30)
    finished = list(runs.glob("shard-*.jsonl"))
    assert len(finished) == 1, "exactly one shard should be complete at the kill"
    finished_mtime = finished[0].stat().st_mtime_ns

    # What a user does after a kill: release Snakemake's lock, then resume.
    assert snakemake(workdir, "--unlock", "--configfile", config).returncode == 0
    result = snakemake(workdir, "--rerun-incomplete", "--configfile", config, "--", *TARGETS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert finished[0].stat().st_mtime_ns == finished_mtime, "finished shard was redone"
    records = [
        json.loads(line)
        for path in sorted(runs.glob("shard-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    keys = [(r["image_id"], r["repeat"]) for r in records]
    assert len(keys) == len(set(keys)) == CONFIG["subset"]["n"] * CONFIG["repeats"]

"""A long job's progress reaches the terminal Snakemake runs in, not only the job's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_helpers import FAST_CONFIG, copy_workflow, snakemake, write_config

pytestmark = pytest.mark.slow


def test_timing_pass_progress_shows_in_snakemakes_output(tmp_path: Path):
    workdir = copy_workflow(tmp_path)
    config = str(write_config(workdir, FAST_CONFIG))
    run = Path("results") / FAST_CONFIG["run_name"]
    result = snakemake(workdir, "--configfile", config, "--", str(run / "runs" / "shard-0.jsonl"))
    assert result.returncode == 0, result.stderr[-5000:]

    terminal = (result.stdout + result.stderr).splitlines()
    progress = [line for line in terminal if line.startswith("[profile shard 0] page ")]
    pages, repeats = FAST_CONFIG["subset"]["n"], FAST_CONFIG["repeats"]
    assert progress, "no progress line in snakemake's output:\n" + "\n".join(terminal[-40:])
    assert progress[0].startswith(f"[profile shard 0] page 1/{pages} (")
    assert f"repeat {repeats}/{repeats}: " in progress[-1]
    assert progress[-1].startswith(f"[profile shard 0] page {pages}/{pages} (")
    assert all(" elapsed, ~" in line and line.endswith(" left") for line in progress)
    # The log file keeps the same lines.
    log = (workdir / run / "logs" / "profile_shard-0.log").read_text()
    assert all(line in log for line in progress)

"""A long job's progress reaches the terminal Snakemake runs in, not only the job's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_helpers import FAST_CONFIG, terminal_output

pytestmark = pytest.mark.slow


def test_timing_pass_progress_shows_in_snakemakes_output(pipeline_run: Path):
    terminal = terminal_output(pipeline_run).splitlines()
    progress = [line for line in terminal if line.startswith("[profile shard 0] page ")]
    pages, repeats = FAST_CONFIG["subset"]["n"], FAST_CONFIG["repeats"]
    assert progress, "no progress line in snakemake's output:\n" + "\n".join(terminal[-40:])
    assert progress[0].startswith(f"[profile shard 0] page 1/{pages} (")
    assert f"repeat {repeats}/{repeats}: " in progress[-1]
    assert progress[-1].startswith(f"[profile shard 0] page {pages}/{pages} (")
    assert all(" elapsed, ~" in line and line.endswith(" left") for line in progress)
    # The log file keeps the same lines.
    log = (pipeline_run / "logs" / "profile_shard-0.log").read_text()
    assert all(line in log for line in progress)

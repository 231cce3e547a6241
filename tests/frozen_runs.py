"""Real runs of the workflow kept under tests/data/runs/ for the tests that only read a run's
metrics, per-page table or records (the variant comparison, `compare`): made on the CPU at
the small preset by `python -m tests.frozen_runs`, which runs them again and replaces the
files (tests/data/runs/README.md); tests/test_frozen_runs.py fails when the code no longer
reads or writes them as they are."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.workflow_helpers import FAST_CONFIG, copy_workflow, snakemake, write_config

FROZEN = Path(__file__).parent / "data" / "runs"
# The session's run (tests/conftest.py), the same config again under another name in the
# same checkout (the same pages and model), and the same pages with grouped_mm MoE experts.
CONFIGS = {
    "e2e": FAST_CONFIG,
    "e2e-b": {**FAST_CONFIG, "run_name": "e2e-b"},
    "e2e-grouped": {
        **FAST_CONFIG,
        "run_name": "e2e-grouped",
        "model": {"experts_implementation": "grouped_mm"},
        "operators": {"enabled": False},
    },
}
# What the tests read of each run.
KEPT = ("metrics.json", "tables/per_image.csv", "runs/shard-0.jsonl")


def frozen_run(name: str) -> Path:
    """The folder of the frozen run `name` (one of CONFIGS), laid out as results/<name>/."""
    return FROZEN / name


def freeze(scratch: Path) -> None:
    """Run each of CONFIGS up to its metrics.json in one scratch checkout under `scratch`,
    then copy what the tests read of each into tests/data/runs/: every run first, since a
    copy into this tree makes it dirty for the runs after it (their metrics name the
    source)."""
    checkout = copy_workflow(scratch)
    for name, config in CONFIGS.items():
        path = write_config(checkout, config)
        target = f"results/{name}/metrics.json"
        result = snakemake(checkout, "--configfile", str(path), "--", target, timeout=3600)
        if result.returncode != 0:
            sys.exit(f"{name}: the workflow failed:\n{result.stderr[-5000:]}")
    for name in CONFIGS:
        for kept in KEPT:
            dest = frozen_run(name) / kept
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(checkout / "results" / name / kept, dest)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        freeze(Path(scratch))

"""Wall time of the main command from a fresh clone, and of the rerun after a notebook edit.

Usage: python benchmarks/pipeline_timing.py [REPO] (default: this checkout's HEAD)

Clones the repository into a temporary folder (no results, no generated pages), runs the
README's main job `snakemake --cores 1 --resources gpu=1` with the tools of the current
environment, then edits notebooks/report.py and runs it again. Targets on the 2-core CI
machine: at most 300 s for the first run and 60 s for the rerun.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAIN = ["snakemake", "--cores", "1", "--resources", "gpu=1"]


def timed(command: list[str], cwd: Path) -> float:
    """Run `command` in `cwd` and return its wall time; fail loudly on a non-zero exit."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    """Clone, run, edit a notebook, rerun; print both wall times against the targets."""
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "vlmprof"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        first = timed(MAIN, clone)
        notebook = clone / "notebooks" / "report.py"
        notebook.write_text(notebook.read_text() + "\n# %% [markdown]\n# An edit.\n")
        rerun = timed(MAIN, clone)
    print(f"cores: {os.cpu_count()}")
    print(f"main command from a fresh clone: {first:6.1f} s (target <= 300 s)")
    print(f"rerun after a notebook edit:     {rerun:6.1f} s (target <= 60 s)")


if __name__ == "__main__":
    main()

"""The benchmarks fail loudly and say what produced their numbers: every shell script stops
at the first failure with a non-zero exit, and every JSON file records commit, dirty flag,
command line and a hash of the arguments."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflow_helpers import BIN, REPO, copy_workflow
from vlmprof.provenance import config_hash, source_state

SCRIPTS = sorted((REPO / "benchmarks").glob("*.sh"))


def _executable(script: Path) -> bool:
    return script.read_text().startswith("#!")


@pytest.mark.parametrize("script", [s for s in SCRIPTS if _executable(s)], ids=lambda s: s.name)
def test_every_script_stops_at_the_first_failure(script: Path):
    assert "\nset -euo pipefail\n" in script.read_text(), f"{script.name}: add set -euo pipefail"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of the workflow and the benchmarks, so nothing is written into the checkout."""
    copy_workflow(tmp_path)
    shutil.copytree(REPO / "benchmarks", tmp_path / "benchmarks")
    return tmp_path


def _run(scratch: Path, command: list[str], **env: str) -> subprocess.CompletedProcess:
    path = f"{BIN}:/usr/bin:/bin"
    return subprocess.run(
        command,
        cwd=scratch,
        env={"PATH": path, "HOME": str(scratch), "PYTHONPATH": str(REPO / "src")} | env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("command", "env", "log"),
    [
        (["benchmarks/scale_out.sh", "out"], {"CONFIG": "missing.yaml"}, "snakemake-scale-1gpu"),
        (
            ["benchmarks/gpu_validation.sh", "check", "out", "--configfile", "missing.yaml"],
            {},
            "snakemake-check",
        ),
    ],
    ids=["scale_out", "gpu_validation"],
)
def test_a_failed_pipeline_fails_the_script(scratch: Path, command, env, log):
    done = _run(scratch, ["bash", *command], **env)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "wall time" not in done.stdout, "a failed run printed a wall time"
    assert "failed (exit" in done.stderr and "missing.yaml" in done.stderr
    out = scratch / "out"
    assert "missing.yaml" in (out / f"{log}.log").read_text()
    assert not list(out.glob("*.tgz"))
    assert json.loads((out / "source.json").read_text()) == source_state()


def test_benchmark_json_records_what_produced_it(tmp_path: Path):
    out = tmp_path / "host.json"
    argv = ["benchmarks/host_speed.py", "--seconds", "0.2", "--block-ms", "5", "--device", "cpu"]
    subprocess.run([sys.executable, *argv, "--json", str(out)], cwd=REPO, check=True, timeout=120)
    written = json.loads(out.read_text())
    assert written["workloads"]["python"]["blocks"] > 0
    assert written["args"]["seconds"] == 0.2
    assert written["provenance"] == source_state() | {
        "argv": [*argv, "--json", str(out)],
        "config_hash": config_hash(written["args"]),
    }

"""Running the real Snakemake workflow in a scratch copy of the repository."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

from vlmprof.runtime.profile_settings import ProfileSettings

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
FAST_CONFIG = {
    "run_name": "e2e",
    "dataset": {"synthetic_pages": 6},
    "subset": {"n": 3},
    "repeats": 2,
    "max_new_tokens": 6,
    "operators": {"images": 1, "top_n": 10},
}


def copy_workflow(dest: Path) -> Path:
    """Copy what a user checks out (Snakefile, workflow, config, notebooks) into `dest`."""
    (dest / "docs").mkdir()
    for name in ("Snakefile", "environment.yml", "docs/rulegraph.svg"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("workflow", "config", "notebooks"):
        shutil.copytree(REPO / name, dest / name)
    return dest


def default_config() -> dict:
    """config/config.yaml as the workflow reads it: validated, the schema's defaults filled."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def default_settings(**changes: object) -> ProfileSettings:
    """The timing pass's settings of shard 0 of the default config, with `changes`."""
    return dataclasses.replace(ProfileSettings.from_config(default_config(), shard=0), **changes)


def write_config(dest: Path, overrides: dict) -> Path:
    """A config file with `overrides` to pass as --configfile."""
    path = dest / "test-config.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def snakemake_env() -> dict[str, str]:
    """The environment with this interpreter's tools (jupytext, papermill) first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir` with this environment's tools first on PATH."""
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--resources", "gpu=1", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=snakemake_env(),
    )


def jobs_in_dry_run(workdir: Path, *args: str) -> set[str]:
    """Names of the rules a dry run would execute."""
    result = snakemake(workdir, "-n", *args)
    assert result.returncode == 0, result.stderr + result.stdout
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return set()
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rules = {
        parts[0]
        for parts in (line.split() for line in table.splitlines())
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total"
    }
    assert rules, output
    return rules


def planned_jobs(workdir: Path, *args: str) -> list[dict[str, str]]:
    """Each job of a dry run as its printed fields (rule, input, output, wildcards, ...)."""
    result = snakemake(workdir, "-n", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs: list[dict[str, str]] = []
    for line in result.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            jobs.append({"rule": line.split()[1].rstrip(":")})
        elif jobs and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            jobs[-1][key] = value
    return jobs


def job_arm(job: dict[str, str]) -> str | None:
    """The `arm` wildcard of a planned job (its arm's folder, "" for the baseline's), or None
    for a job of no arm."""
    wildcards = dict(
        item.split("=", 1) for item in job.get("wildcards", "").split(", ") if "=" in item
    )
    return wildcards.get("arm")


def checkout_of_run(pipeline_run: Path, scratch: Path) -> Path:
    """A copy, under `scratch`, of the session's workflow checkout with its finished run."""
    checkout = scratch / "checkout"
    shutil.copytree(pipeline_run.parents[1], checkout, symlinks=True)
    return checkout


def run_workflow(checkout: Path, config: dict, *targets: str) -> Path:
    """Run the checkout's workflow with `config` as its config file, whole or up to
    `targets`, which must succeed; the run's results folder. What Snakemake printed is kept
    beside the config (`terminal_output`)."""
    path = write_config(checkout, config)
    result = snakemake(checkout, "--configfile", str(path), "--", *targets)
    assert result.returncode == 0, result.stderr[-5000:]
    run = checkout / "results" / config["run_name"]
    terminal_file(run).write_text(result.stdout + result.stderr)
    return run


def terminal_file(run: Path) -> Path:
    """Where run_workflow keeps what Snakemake printed while it made `run`."""
    return run.parents[1] / f"{run.name}.terminal.txt"


def terminal_output(run: Path) -> str:
    """What Snakemake printed on its terminal while run_workflow made `run`."""
    return terminal_file(run).read_text()


def run_with_more_arms(
    checkout: Path,
    overrides: dict,
    allowed_jobs: set[str],
    required_jobs: set[str],
    *targets: str,
) -> Path:
    """Run the checkout's workflow with `overrides` added to the fast config, whole or up to
    `targets`, first checking by a dry run that the `required_jobs` and no others than
    `allowed_jobs` would run, and none of the baseline's arm again (its jobs are done; one it
    never needed, such as the gate's oracle, may run); the run's results folder."""
    config = {**FAST_CONFIG, **overrides}
    config_file = str(write_config(checkout, config))
    jobs = planned_jobs(checkout, "--configfile", config_file, "--", *targets)
    rules = {job["rule"] for job in jobs}
    assert rules <= allowed_jobs, f"adding {list(overrides)} reran: {rules - allowed_jobs}"
    assert required_jobs <= rules, f"{required_jobs - rules} would not run"
    baseline = sorted(
        job["rule"]
        for job in jobs
        if job_arm(job) == "" and any((checkout / path).exists() for path in job_outputs(job))
    )
    assert not baseline, f"adding {list(overrides)} reran the baseline's {baseline}"
    return run_workflow(checkout, config, *targets)


def job_outputs(job: dict[str, str]) -> list[str]:
    """The output paths of a planned job."""
    return [path for path in job.get("output", "").split(", ") if path]

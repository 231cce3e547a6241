"""The SLURM profile on a real SLURM: the CPU default, up to its metrics and operator pass
(every GPU rule and the CPU jobs they stand on), submitted job by job."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.needs_tool import missing_tool
from tests.slurm_cluster import SlurmCluster, SlurmJob, cluster_jobs, running_cluster
from tests.slurm_cluster import unavailable_reason as slurm_unavailable
from tests.workflow_helpers import (
    FAST_CONFIG,
    REPO,
    SNAKEMAKE,
    copy_workflow,
    jobs_in_dry_run,
    snakemake_env,
    write_config,
)

pytestmark = pytest.mark.slow

PROFILE = REPO / "profiles" / "slurm"
GPU_RULES = {"profile_shard", "operator_profile", "calibrate_peaks"}
# One page of a few tokens: what is shown is where each job runs, not what it measures. The
# operator pass stays on so all three GPU rules go through SLURM.
SLURM_CONFIG = {
    **FAST_CONFIG,
    "run_name": "slurm",
    "device": "cpu",
    "model": {"preset": "small"},
    "dataset": {"synthetic_pages": 3},
    "subset": {"n": 1},
    "repeats": 1,
    "max_new_tokens": 2,
}
# Up to the metrics and the operator pass: every GPU rule and the CPU jobs they stand on.
# The notebook jobs after them are CPU jobs like these, run in every other workflow test;
# through SLURM they would only add turns of the queue.
TARGETS = ["results/slurm/metrics.json", "results/slurm/ops/operators.csv"]


@dataclass(frozen=True)
class SlurmRun:
    """One workflow run through SLURM: its folder, snakemake's output, the jobs SLURM ran."""

    workdir: Path
    result: subprocess.CompletedProcess
    expected_rules: set[str]
    jobs: list[SlurmJob]


def fitted(resources: dict, cluster: SlurmCluster) -> dict:
    """The profile's resources shrunk to the test node, so two jobs fit side by side."""
    caps = {"cpus_per_task": max(1, cluster.cpus // 2), "mem_mb": cluster.mem_mb // 2}
    return {
        key: min(value, caps[key]) if key in caps else value for key, value in resources.items()
    }


def test_profile_names_only_rules_of_the_workflow(tmp_path: Path):
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    workdir = copy_workflow(tmp_path)
    result = subprocess.run(
        [SNAKEMAKE, "--list-rules"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=snakemake_env(),
    )
    assert result.returncode == 0, result.stderr
    assert profile["executor"] == "slurm"
    assert set(profile["set-resources"]) <= set(result.stdout.split())
    assert set(profile["set-resources"]) >= GPU_RULES


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A single-node SLURM on localhost for this module's tests; skipped (or failed, see
    tests/needs_tool.py) where it cannot run."""
    missing_tool(slurm_unavailable())
    with running_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> SlurmRun:
    """The CPU default run up to TARGETS with --profile profiles/slurm, fitted to the test
    node."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-workflow"))
    config = str(write_config(workdir, SLURM_CONFIG))
    expected_rules = jobs_in_dry_run(workdir, "--configfile", config, "--", *TARGETS)
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    # The test node's own settings: resources it can hold; job states from squeue, as it
    # keeps no accounting database; the SLURM log of every job kept for the checks below.
    test_site = workdir / "profiles" / "slurm-test"
    test_site.mkdir(parents=True)
    (test_site / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "default-resources": fitted(profile["default-resources"], slurm_cluster),
                "set-resources": {
                    rule: fitted(resources, slurm_cluster)
                    for rule, resources in profile["set-resources"].items()
                },
                "slurm-status-command": "squeue",
                "slurm-init-seconds-before-status-checks": 2,
                "slurm-keep-successful-logs": True,
            }
        )
    )
    result = subprocess.run(
        [SNAKEMAKE, "--profile", str(PROFILE), "--profile", str(test_site)]
        + ["--configfile", config, "--", *TARGETS],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
        env=snakemake_env(),
    )
    return SlurmRun(workdir, result, expected_rules, cluster_jobs())


def rule_of(job: SlurmJob) -> str:
    """The rule a job ran, from the comment the executor gives it (rule_<name>[_wildcards_..])."""
    return job.comment.removeprefix("rule_").split("_wildcards_")[0]


def test_run_finishes_with_metrics(slurm_run: SlurmRun):
    assert slurm_run.result.returncode == 0, slurm_run.result.stderr[-5000:]
    metrics = json.loads((slurm_run.workdir / "results/slurm/metrics.json").read_text())
    assert metrics["aggregates"]["stage_ms"]["prefill"]["mean"] > 0
    assert (slurm_run.workdir / "results/slurm/ops/operators.csv").stat().st_size > 0


def test_every_job_went_through_slurm(slurm_run: SlurmRun):
    assert slurm_run.result.returncode == 0, slurm_run.result.stderr[-5000:]
    assert {rule_of(job) for job in slurm_run.jobs} == slurm_run.expected_rules
    assert {job.state for job in slurm_run.jobs} == {"COMPLETED"}
    logs = slurm_run.workdir / ".snakemake" / "slurm_logs"
    for job in slurm_run.jobs:
        assert list(logs.glob(f"rule_{rule_of(job)}/**/{job.job_id}.log")), job


def test_gpu_jobs_ask_for_one_gpu_and_the_others_for_none(slurm_run: SlurmRun):
    assert slurm_run.result.returncode == 0, slurm_run.result.stderr[-5000:]
    requests = {(rule_of(job), job.tres_per_job) for job in slurm_run.jobs}
    gpu_rules = {rule for rule, tres in requests if tres != "N/A"}
    assert gpu_rules == GPU_RULES
    assert {tres for rule, tres in requests if rule in gpu_rules} == {"gres:gpu:1"}

"""The A/A control as the workflow plans it: with variants, the baseline again as one more
arm, timed after every other arm; none without variants or when disabled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_helpers import (
    FAST_CONFIG,
    copy_workflow,
    job_arm,
    jobs_in_dry_run,
    planned_jobs,
    snakemake,
)
from tests.workflow_helpers import write_config as _write_config

GROUPED = {"grouped": {"experts": "grouped"}}
RUN = f"results/{FAST_CONFIG['run_name']}"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("control"))


def write_config(checkout: Path, **changes: object) -> str:
    return str(_write_config(checkout, {**FAST_CONFIG, **changes}))


def test_a_run_with_variants_plans_the_control_after_every_other_arm(checkout: Path):
    jobs = planned_jobs(checkout, "--configfile", write_config(checkout, variants=GROUPED))
    control = [job for job in jobs if job_arm(job) == "variants/control/"]
    assert {job["rule"] for job in control} == {"profile_shard", "aggregate", "variant_gate"}
    shard = next(job for job in control if job["rule"] == "profile_shard")
    waits_for = set(shard["input"].split(", "))
    assert {f"{RUN}/runs/shard-0.jsonl", f"{RUN}/variants/grouped/runs/shard-0.jsonl"} <= waits_for
    assert shard["output"].startswith(f"{RUN}/variants/control/runs/shard-0.jsonl")
    # A variant waits for the pages and the baseline's outputs (the tokens its reference
    # run is fed for the gate), nothing else.
    grouped = next(
        job
        for job in jobs
        if job["rule"] == "profile_shard" and job_arm(job) == "variants/grouped/"
    )
    assert set(grouped["input"].split(", ")) == {
        f"{RUN}/inputs/subset.csv",
        f"{RUN}/runs/shard-0.outputs.pt",
    }
    compare = next(job for job in jobs if job["rule"] == "compare_variants")
    assert f"{RUN}/variants/control/metrics.json" in compare["input"]


def test_no_control_without_variants_or_when_disabled(checkout: Path):
    assert "variant_gate" not in jobs_in_dry_run(checkout, "--configfile", write_config(checkout))
    disabled = write_config(checkout, variants=GROUPED, variant_control={"enabled": False})
    jobs = planned_jobs(checkout, "--configfile", disabled)
    assert not [job for job in jobs if "control" in job.get("output", "")]
    shards = sorted(job_arm(job) for job in jobs if job["rule"] == "profile_shard")
    assert shards == ["", "variants/grouped/"]


def test_a_control_named_like_a_variant_is_refused_before_any_job(checkout: Path):
    config = write_config(checkout, variants={"control": {"experts": "grouped"}})
    result = snakemake(checkout, "-n", "--configfile", config)
    assert result.returncode != 0
    assert "variant_control.name: 'control' is taken by a variant" in result.stderr
    assert "Job stats" not in result.stdout + result.stderr


def test_a_bfloat16_runs_float32_variant_is_its_own_check(checkout: Path):
    variants = {"grouped": {"experts": "grouped"}, "wide": {"dtype": "float32"}}
    jobs = planned_jobs(
        checkout, "--configfile", write_config(checkout, dtype="bfloat16", variants=variants)
    )
    checked = sorted(job_arm(job) for job in jobs if job["rule"] == "gate_check")
    assert checked == ["", "variants/control/", "variants/grouped/"]
    gate = next(job for job in jobs if job["rule"] == "variant_gate" and "wide" in job["output"])
    assert f"{RUN}/runs/shard-0.check.pt" in gate["input"]
    assert gate["input"].count(f"{RUN}/variants/wide/runs/shard-0.outputs.pt") == 2

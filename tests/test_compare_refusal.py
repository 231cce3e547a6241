"""The workflow's refusal to compare two runs: judged where the workflow is planned from what
is known then (the config the run will record; its metrics.json only when it recorded that
config), and by the compare job, which then writes nothing and says why in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_compare import CONFIG, write_run
from vlmprof.compare import WORKFLOW_FORCE_HINT, workflow_refusal
from vlmprof.jobs.aggregate import compare

OTHER_DEVICE = "other device (cpu (AMD EPYC 9654) vs NVIDIA H200)"
OTHER_CONFIG = "other config (repeats 3 vs 5)"


def _refusal(*found: str) -> str:
    return f"cannot compare: {'; '.join(found)}; {WORKFLOW_FORCE_HINT}"


def _on_h200(metrics: dict) -> None:
    metrics["environment"]["device_name"] = "NVIDIA H200"


def _five_repeats(metrics: dict) -> None:
    metrics["config"]["repeats"] = 5


def test_before_the_run_only_its_planned_config_is_judged(tmp_path: Path):
    baseline = write_run(tmp_path / "baseline") / "metrics.json"
    not_yet = tmp_path / "run" / "metrics.json"
    planned = {**CONFIG, "run_name": "run"}
    assert workflow_refusal(baseline, not_yet, planned) is None
    refused = workflow_refusal(baseline, not_yet, {**planned, "repeats": 5})
    assert refused == _refusal(OTHER_CONFIG)
    assert "set compare.force: true" in refused and "--force" not in refused


def test_a_run_that_recorded_the_planned_config_is_judged_by_its_metrics(tmp_path: Path):
    baseline = write_run(tmp_path / "baseline") / "metrics.json"
    run = write_run(tmp_path / "run", change=_on_h200) / "metrics.json"
    assert workflow_refusal(baseline, run, CONFIG) == _refusal(OTHER_DEVICE)


def test_metrics_of_another_config_than_planned_are_not_judged(tmp_path: Path):
    """The run's jobs will remake them: the pages and device they name are not the run's."""
    baseline = write_run(tmp_path / "baseline") / "metrics.json"

    def stale(metrics: dict) -> None:
        _on_h200(metrics)
        _five_repeats(metrics)

    run = write_run(tmp_path / "run", change=stale) / "metrics.json"
    assert workflow_refusal(baseline, run, CONFIG) is None
    # Without a planned config (the job, once the run's metrics are made) they count.
    assert workflow_refusal(baseline, run) == _refusal(OTHER_CONFIG, OTHER_DEVICE)


def test_a_missing_baseline_is_named(tmp_path: Path):
    run = write_run(tmp_path / "run") / "metrics.json"
    with pytest.raises(FileNotFoundError, match="absent/metrics.json: no metrics.json"):
        workflow_refusal(tmp_path / "absent" / "metrics.json", run, CONFIG)


def _compare_job(baseline: Path, run: Path, table: Path, force: bool) -> int:
    return compare(
        str(run / "metrics.json"),
        str(baseline / "metrics.json"),
        str(table),
        tolerance=0.1,
        force=force,
        include_host_stages=False,
    )


def test_the_compare_job_refuses_without_writing_and_compares_when_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    baseline = write_run(tmp_path / "baseline")
    run = write_run(tmp_path / "run", change=_on_h200)
    table = tmp_path / "compare.md"
    assert _compare_job(baseline, run, table, force=False) == 2
    assert capsys.readouterr().err == f"error: {_refusal(OTHER_DEVICE)}\n"
    assert not table.exists()
    assert _compare_job(baseline, run, table, force=True) == 0
    assert table.read_text().startswith(f"Comparable: no, forced: {OTHER_DEVICE}.\n")


def test_the_compare_job_names_an_unreadable_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    baseline = write_run(tmp_path / "baseline")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"aggregates": {}}))
    assert _compare_job(baseline, run, tmp_path / "compare.md", force=False) == 2
    unreadable = f"{run / 'metrics.json'}: no aggregates.stage_ms; not a vlmprof metrics.json"
    assert capsys.readouterr().err == f"error: {unreadable}\n"

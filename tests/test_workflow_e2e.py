"""The real Snakemake workflow end to end on the CPU default, and what a change reruns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from tests.workflow_helpers import FAST_CONFIG, jobs_in_dry_run, snakemake, write_config

pytestmark = pytest.mark.slow


def test_records_cover_every_page_and_repeat(pipeline_run: Path):
    # A page's ground-truth text may span lines: read the table as CSV, not line by line.
    subset = pd.read_csv(pipeline_run / "inputs" / "subset.csv", dtype={"image_id": str})
    pages = len(subset)
    records = [
        json.loads(line)
        for shard in sorted((pipeline_run / "runs").glob("shard-*.jsonl"))
        for line in shard.read_text().splitlines()
    ]
    assert pages == FAST_CONFIG["subset"]["n"]
    assert len(records) == pages * FAST_CONFIG["repeats"]
    assert {(r["image_id"], r["repeat"]) for r in records} == {
        (image_id, repeat) for image_id in subset["image_id"] for repeat in range(2)
    }
    ok = [r for r in records if r["status"] == "ok"]
    assert ok, "no successful record"
    for record in ok:
        assert record["tokens"] == FAST_CONFIG["max_new_tokens"]
        assert record["vision_ms"] <= record["prefill_ms"]
        assert len(record["decode_step_ms"]) == FAST_CONFIG["max_new_tokens"] - 1
        assert record["host"]["wall_ms"] > 0 and record["host"]["busy_fraction"] > 0


def test_metrics_have_the_documented_keys(pipeline_run: Path):
    metrics = json.loads((pipeline_run / "metrics.json").read_text())
    aggregates = metrics["aggregates"]
    for key in ("prefill_ms", "decode_ms", "tokens", "decode_tokens_per_s", "stage_ms"):
        assert key in aggregates
    for stage in ("prefill", "decode", "vision", "sam", "clip", "projector"):
        assert aggregates["stage_ms"][stage]["mean"] > 0
    assert "per_stage" in metrics["mfu"]
    assert "environment" in metrics
    assert metrics["environment"]["device_used"] == "cpu"
    assert metrics["host"]["runs"] == len(
        [line for shard in (pipeline_run / "runs").glob("shard-*.jsonl") for line in shard.open()]
    )
    assert "the run thread was on a CPU" in (pipeline_run / "report.md").read_text()
    assert (pipeline_run / "tables" / "stage_ms.csv").exists()


@pytest.mark.parametrize("notebook", ["report", "stakeholder_summary"])
def test_notebooks_executed_without_errors(pipeline_run: Path, notebook: str):
    executed = nbformat.read(pipeline_run / f"{notebook}.ipynb", as_version=4)
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            assert "Traceback" not in str(output.get("text", ""))
    assert (pipeline_run / f"{notebook}.html").stat().st_size > 0
    assert (pipeline_run / f"{notebook}.md").stat().st_size > 0
    assert (pipeline_run / "publish" / f"{notebook}.html").exists()
    assert (pipeline_run / "publish" / "index.html").exists()


def test_nothing_to_do_after_a_complete_run(pipeline_run: Path, workflow_dir: Path):
    config = str(write_config(workflow_dir, FAST_CONFIG))
    assert jobs_in_dry_run(workflow_dir, "--configfile", config) == set()


def test_notebook_edit_reruns_only_its_render(pipeline_run: Path, workflow_dir: Path):
    config = str(write_config(workflow_dir, FAST_CONFIG))
    source = workflow_dir / "notebooks" / "report.py"
    original = source.read_text()
    source.write_text(original + "\n# %% [markdown]\n# An edit.\n")
    try:
        jobs = jobs_in_dry_run(workflow_dir, "--configfile", config)
    finally:
        source.write_text(original)
    # Rendering the page, exporting it and pulling its figures out: nothing upstream.
    assert jobs == {"render_notebook", "export_notebook", "report_figures", "publish", "all"}


def test_repeats_change_reruns_profiling_and_downstream(pipeline_run: Path, workflow_dir: Path):
    config = str(write_config(workflow_dir, {**FAST_CONFIG, "repeats": 3}))
    jobs = jobs_in_dry_run(workflow_dir, "--configfile", config)
    assert {"profile_shard", "aggregate", "render_notebook", "publish"} <= jobs
    assert "static_flops" not in jobs


def test_peak_change_reruns_aggregation_not_profiling(pipeline_run: Path, workflow_dir: Path):
    overrides = {**FAST_CONFIG, "metrics": {"peak_tflops": 123.0}}
    config = str(write_config(workflow_dir, overrides))
    jobs = jobs_in_dry_run(workflow_dir, "--configfile", config)
    assert {"aggregate", "render_notebook"} <= jobs
    assert not jobs & {"profile_shard", "operator_profile", "static_flops"}


def test_bad_config_fails_before_any_job(workflow_dir: Path):
    config = str(write_config(workflow_dir, {**FAST_CONFIG, "mode": "huge"}))
    result = snakemake(workflow_dir, "-n", "--configfile", config)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert (
        'test-config.yaml: mode: "huge" must be one of tiny, small, base, large, gundam' in output
    )
    assert "Job stats" not in output


def test_cuda_without_gpu_fails_before_any_job(workflow_dir: Path):
    config = str(write_config(workflow_dir, {**FAST_CONFIG, "device": "cuda"}))
    result = snakemake(workflow_dir, "-n", "--configfile", config)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "test-config.yaml: device: cuda was requested but no CUDA GPU is visible" in output
    assert "Job stats" not in output


def test_nsight_rule_says_why_it_skipped_without_nsys(pipeline_run: Path, workflow_dir: Path):
    if shutil.which("nsys"):
        pytest.skip("nsys is installed here; the skip path cannot be shown")
    config = str(write_config(workflow_dir, FAST_CONFIG))
    target = "results/e2e/ops/nsys/summary.txt"
    result = snakemake(workflow_dir, "--configfile", config, "--", target)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    note = (workflow_dir / target).read_text()
    assert note.startswith("skipped: nsys (Nsight Systems) is not on PATH")


def test_report_figures_are_written_out_by_name(pipeline_run: Path):
    names = {path.name for path in (pipeline_run / "figures").glob("*.png")}
    assert {"thumbnail_grid.png", "stage_share_figure.png", "roofline_figure.png"} <= names
    for path in (pipeline_run / "figures").glob("*.png"):
        assert path.read_bytes().startswith(b"\x89PNG")

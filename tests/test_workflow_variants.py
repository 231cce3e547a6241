"""Variants through the real workflow on the CPU default: gate, sweep point, refusals, reruns.

The run starts from a copy of the session's finished run and adds variants, so it also
shows that adding variants leaves the baseline's jobs alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workflow_helpers import (
    FAST_CONFIG,
    checkout_of_run,
    run_with_more_arms,
    snakemake,
    write_config,
)
from vlmprof.variants.control import CONTROL, CONTROL_VERDICT

# An optimisation that also generates pages two at a time with a worker loading them, and a
# sweep point. A wrong model failing the gate through the workflow is the models run's
# planted best path (tests/test_workflow_models.py).
VARIANTS = {
    "fast": {"experts": "grouped", "sam_attention": "folded", "batch_size": 2, "workers": 1},
    "base-mode": {"mode": "base"},
}
VARIANT_JOBS = {
    "profile_shard",
    "aggregate",
    "variant_gate",
    "gate_oracle",
    "static_flops",
    "compare_variants",
}
# Up to the comparison: the notebooks' variant section is shown on a comparison of every
# gate status in tests/test_report_variants.py, and a report rendered after variants by the
# throughput run (tests/test_workflow_throughput.py).
COMPARISON = f"results/{FAST_CONFIG['run_name']}/variants/comparison.json"


@pytest.fixture(scope="module")
def variant_checkout(pipeline_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's workflow checkout with its finished baseline run."""
    return checkout_of_run(pipeline_run, tmp_path_factory.mktemp("variants"))


@pytest.fixture(scope="module")
def variant_run(variant_checkout: Path) -> Path:
    """The same run with variants added, up to their comparison: an optimisation run two
    pages at a time with a worker, and a sweep point (and the A/A control)."""
    required = {"profile_shard", "variant_gate", "aggregate", "compare_variants"}
    more = {"variants": VARIANTS}
    return run_with_more_arms(variant_checkout, more, VARIANT_JOBS, required, COMPARISON)


def _gate(run: Path, name: str) -> dict:
    return json.loads((run / "variants" / name / "gate.json").read_text())


def test_an_optimisation_passes_the_gate_and_is_profiled(variant_run: Path):
    gate = _gate(variant_run, "fast")
    assert gate["status"] == "passed", gate
    assert gate["pages"] == FAST_CONFIG["subset"]["n"]
    metrics = json.loads((variant_run / "variants" / "fast" / "metrics.json").read_text())
    resolved = metrics["config"]["resolved"]
    assert resolved["experts_implementation"] == "grouped_mm"
    assert resolved["sam_attention"] == "folded"
    # Optimisations share the baseline's FLOP count: no static job of their own.
    assert not (variant_run / "variants" / "fast" / "static").exists()


def test_pages_generated_two_at_a_time_with_a_worker_pass_the_gate(
    variant_run: Path,
):
    gate = _gate(variant_run, "fast")
    assert gate["status"] == "passed", gate
    metrics = json.loads((variant_run / "variants" / "fast" / "metrics.json").read_text())
    records = [
        json.loads(line)
        for path in sorted((variant_run / "variants" / "fast").glob("runs/shard-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    sizes = sorted(record["batch_size"] for record in records)
    assert set(sizes) == {1, 2} and len(records) == FAST_CONFIG["subset"]["n"] * 2
    aggregates = metrics["aggregates"]
    assert aggregates["batch_size"]["mean"] == pytest.approx(sum(sizes) / len(sizes))
    assert metrics["cost"]["batch_size"] == aggregates["batch_size"]["mean"]
    assert aggregates["pages_per_s_gpu_side"] > 0
    # A worker process loaded and preprocessed the pages; the pass kept how long it waited.
    waits = [r["input_wait_ms"] for r in records if r["repeat"] == 0]
    assert len(waits) == FAST_CONFIG["subset"]["n"] and all(w >= 0 for w in waits)
    assert aggregates["pages_per_s_end_to_end"] > 0
    comparison = json.loads((variant_run / "variants" / "comparison.json").read_text())
    setting = next(s for s in comparison["settings"] if s["name"] == "fast")
    # The setting carries the batch size it was planned with (its last batch holds 1 page).
    assert setting["batch_size"] == 2 != metrics["cost"]["batch_size"]


def test_a_sweep_point_is_compared_without_a_gate(variant_run: Path):
    gate = _gate(variant_run, "base-mode")
    assert gate["status"] == "not_applicable"
    static = variant_run / "variants" / "base-mode" / "static" / "static_compute.json"
    assert static.exists()
    base_flops = json.loads((variant_run / "static" / "static_compute.json").read_text())
    assert json.loads(static.read_text()) != base_flops


def test_impossible_switch_is_refused_before_any_job(variant_checkout: Path):
    graphed = {"graphed": {"experts": "grouped", "decode": "cuda_graph"}}
    config = write_config(variant_checkout, {**FAST_CONFIG, "variants": graphed})
    result = snakemake(variant_checkout, "--configfile", str(config))
    assert result.returncode != 0
    assert "variants.graphed.decode: cuda_graph needs a CUDA device" in result.stderr
    assert "Job stats" not in result.stdout + result.stderr


def test_the_control_runs_after_every_other_arm_and_measures_the_drift(variant_run: Path):
    comparison = json.loads((variant_run / "variants" / "comparison.json").read_text())
    assert comparison["control"] == CONTROL
    statuses = {v["name"]: v["status"] for v in comparison["variants"]}
    assert statuses[CONTROL] == CONTROL
    rows = [row for row in comparison["rows"] if row["variant"] == CONTROL]
    assert rows and {row["verdict"] for row in rows} == {CONTROL_VERDICT}
    # Timed after every other arm: its records are the run's last.
    finished = {
        arm: (variant_run / "variants" / arm / "runs" / "shard-0.jsonl").stat().st_mtime_ns
        for arm in (*VARIANTS, CONTROL)
    }
    assert max(finished, key=finished.__getitem__) == CONTROL

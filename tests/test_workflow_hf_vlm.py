"""A transformers VLM as the run's own model through the real workflow on the CPU: its counted
work, the operator pass and both notebooks, with no SAM stage anywhere. (Its gate runs in
tests/test_workflow_models.py's run, where its static KV cache is its best path; every
architecture's eager attention and static KV cache pass the gate in tests/test_models_hf_vlm.py.)

The run is the session's `awkward_run` (tests/conftest.py): GOT-OCR-2.0 on a folder whose
pages but two fail, which the failed-pages tests read too."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf_run(awkward_run: Path) -> Path:
    """The session's run with GOT-OCR-2.0 (small) as its model."""
    return awkward_run


def test_its_metrics_come_from_the_counted_work_of_its_pages(hf_run: Path):
    metrics = json.loads((hf_run / "metrics.json").read_text())
    records = [json.loads(line) for line in (hf_run / "runs" / "shard-0.jsonl").open()]
    ok = [record for record in records if record["status"] == "ok"]
    assert ok
    assert metrics["config"]["resolved"]["architecture"] == "got_ocr2"
    assert metrics["work"]["source"] == "counted"
    assert metrics["mfu"]["per_stage"]["vision"]["flops_total"] == pytest.approx(
        sum(r["counted_work"]["vision"]["flops"] for r in ok)
    )
    assert "sam" not in metrics["aggregates"]["stage_ms"]
    static = json.loads((hf_run / "static" / "static_compute.json").read_text())
    assert static["params"]["clip"] > 0 and static["stages"] == {}


def test_the_operator_pass_attributes_its_stages(hf_run: Path):
    operators = pd.read_csv(hf_run / "ops" / "operators.csv")
    assert {"clip", "projector", "decode"} <= set(operators["stage"])


@pytest.mark.parametrize("notebook", ["report", "stakeholder_summary"])
def test_both_notebooks_run_without_a_sam_stage(hf_run: Path, notebook: str):
    text = (hf_run / f"{notebook}.md").read_text()
    assert "Traceback" not in text
    if notebook == "report":
        assert "This model has no analytic formulas" in text

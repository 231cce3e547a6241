"""metrics.json through its typed classes: every committed document reads (sections added
since are None) and writes back what it read for every key the classes know, a document the
pipeline writes reads back exactly, a wrong value is named by its key path, and the schema
page in docs/ is generated from the classes."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from tests.workflow_helpers import REPO
from vlmprof.flops.work import WorkSource
from vlmprof.metrics.document import RETIRED, SCHEMA_COMMAND, MetricsDocument, schema_page
from vlmprof.typed_json import DocumentError, undescribed

MEASUREMENTS = REPO / "docs" / "measurements"
COMMITTED = sorted(MEASUREMENTS.glob("**/*metrics.json"))
# Sections metrics.json gained after its first documents, None in those.
LATER_SECTIONS = ("roofline", "telemetry", "host", "cost", "timeline")


def lost_keys(original: Any, written: Any, path: str = "") -> set[str]:
    """Key paths of `original` whose value `written` does not hold as it was (list items
    compared in order)."""
    if isinstance(original, dict) and isinstance(written, dict):
        lost = set()
        for key, value in original.items():
            inner = f"{path}.{key}" if path else key
            lost |= {inner} if key not in written else lost_keys(value, written[key], inner)
        return lost
    if isinstance(original, list) and isinstance(written, list) and len(original) == len(written):
        pairs = zip(original, written, strict=True)
        return set().union(*(lost_keys(a, b, f"{path}[]") for a, b in pairs))
    return set() if original == written else {path}


def unretired(lost: set[str]) -> set[str]:
    """The lost key paths that no retired key (`*`: any stage) accounts for."""
    return {path for path in lost if not any(fnmatch.fnmatch(path, key) for key in RETIRED)}


def test_the_check_catches_a_key_the_classes_drop_or_change():
    original = {"aggregates": {"tokens_per_s": {"mean": 1.0}, "surprise": 2, "pages_per_s": 3.0}}
    written = {"aggregates": {"pages_per_s": 4.0}}
    lost = lost_keys(original, written)
    assert lost == {"aggregates.tokens_per_s", "aggregates.surprise", "aggregates.pages_per_s"}
    assert unretired(lost) == {"aggregates.surprise"}
    assert lost_keys({"inputs": [{"sha256": "a"}]}, {"inputs": [{"sha256": "b"}]}) == {
        "inputs[].sha256"
    }


def test_measurements_are_committed():
    assert len(COMMITTED) > 20  # the glob finds them


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.relative_to(MEASUREMENTS).as_posix())
def test_every_committed_document_reads_and_writes_back_what_it_knows(path: Path):
    original = json.loads(path.read_text(encoding="utf-8"))
    document = MetricsDocument.read(path)
    written = document.to_dict()
    assert not unretired(lost_keys(original, written)), "the classes lost or changed keys"
    for section in LATER_SECTIONS:
        assert (getattr(document, section) is None) == (section not in original), section
    # Writing back and reading again changes nothing more.
    assert MetricsDocument.from_dict(written).to_dict() == written


def test_old_documents_name_the_source_of_their_work():
    def source(name: str) -> WorkSource:
        return MetricsDocument.read(MEASUREMENTS / name).work.source

    assert source("h100/metrics.json") is WorkSource.FORMULAS
    assert source("models-h100-preview/deepseek-full/deepseek-ocr2-metrics.json") is (
        WorkSource.FORMULAS
    )
    # A transformers VLM has no formulas: its work was counted over its pages.
    assert source("models-h100-preview/hf-vlm-full/got-ocr2-metrics.json") is WorkSource.COUNTED


def test_figures_since_redefined_are_left_out_of_older_documents():
    """An older document's end-to-end pages/s (event times, shards summed) and its pages per
    GPU-day (GPU time alone) are other figures than the ones of those names now."""
    path = MEASUREMENTS / "gate-h100" / "metrics.json"
    original = json.loads(path.read_text(encoding="utf-8"))
    assert original["aggregates"]["pages_per_s_end_to_end"]
    assert original["cost"]["pages_per_gpu_day"]
    older = MetricsDocument.read(path)
    assert older.aggregates.pages_per_s_end_to_end is None
    assert older.cost.pages_per_gpu_day is None
    assert older.cost.gpu_ms_per_page == original["cost"]["gpu_ms_per_page"]
    written_now = {
        "aggregates": {"output_tokens_per_s_end_to_end": 20.0, "pages_per_s_end_to_end": 2.0},
        "cost": {"end_to_end_ms_per_page": 500.0, "pages_per_gpu_day": 172_800.0},
    }
    now = MetricsDocument.from_dict(written_now)
    assert now.aggregates.pages_per_s_end_to_end == 2.0
    assert now.cost.pages_per_gpu_day == 172_800.0


def test_a_value_of_the_wrong_kind_is_named_by_its_key_path(tmp_path: Path):
    with pytest.raises(DocumentError, match=r"aggregates\.stage_ms\.prefill\.mean: expected a"):
        MetricsDocument.from_dict({"aggregates": {"stage_ms": {"prefill": {"mean": "fast"}}}})
    with pytest.raises(DocumentError, match=r"work\.source: expected 'formulas' or 'counted'"):
        MetricsDocument.from_dict({"work": {"source": "guessed"}})
    with pytest.raises(DocumentError, match=r"failures\[0\]: expected an object"):
        MetricsDocument.from_dict({"failures": ["page 3"]})
    not_json = tmp_path / "metrics.json"
    not_json.write_text("{")
    with pytest.raises(DocumentError, match=f"{not_json}: not JSON"):
        MetricsDocument.read(not_json)
    not_metrics = tmp_path / "gate.json"
    not_metrics.write_text(json.dumps({"variant": "x"}))
    with pytest.raises(DocumentError, match="no aggregates.stage_ms; not a vlmprof metrics.json"):
        MetricsDocument.read(not_metrics)


def test_every_key_is_described_and_the_schema_page_is_current():
    assert undescribed(MetricsDocument) == []
    committed = (REPO / "docs" / "metrics-schema.md").read_text(encoding="utf-8")
    assert committed == schema_page(), f"docs/metrics-schema.md is stale: {SCHEMA_COMMAND}"


@pytest.mark.slow
def test_the_document_a_run_writes_reads_back_exactly(pipeline_run: Path):
    original = json.loads((pipeline_run / "metrics.json").read_text(encoding="utf-8"))
    document = MetricsDocument.read(pipeline_run / "metrics.json")
    assert document.to_dict() == original
    # A document written now has every section; the run's operator pass gives the timeline.
    assert None not in (getattr(document, section) for section in LATER_SECTIONS)
    assert document.work.source is WorkSource.FORMULAS

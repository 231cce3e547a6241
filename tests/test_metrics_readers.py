"""metrics.json is read through its typed classes, by attribute, everywhere it is read: the
report, the variants, the two-run comparison and the notebooks; and every committed document,
old ones included, goes through every reader of the report.

What counts as reading a document untyped (`untyped_reads`): in those files, a subscript
(`x[...]`) or a `.get(` on an expression that names a document (a name or attribute whose
name holds "metrics": `metrics`, `run.metrics`, `metrics_a`) or one of its typed sections
(`metrics.cost`), and a `json.load`/`json.loads` whose argument mentions metrics. Mappings
the classes declare as mappings (a stage's figures by name: `metrics.aggregates.stage_ms`,
the configuration: `metrics.config`) may be subscripted."""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest

from tests.test_metrics_document import COMMITTED, MEASUREMENTS
from tests.workflow_helpers import REPO
from vlmprof.metrics.document import MetricsDocument, Telemetry
from vlmprof.metrics.host import host_sentence
from vlmprof.metrics.telemetry import energy_sentence, energy_table, flagged_table
from vlmprof.report import (
    cost,
    findings,
    operators,
    quality,
    sentences,
    static_compute,
    throughput,
    timing,
    utilisation,
)
from vlmprof.variants.best_path import RELEASED
from vlmprof.variants.models_comparison import ModelPath, model_entry

SRC = REPO / "src" / "vlmprof"
READERS = sorted(
    [
        *(SRC / "report").glob("*.py"),
        *(SRC / "variants").glob("*.py"),
        SRC / "compare.py",
        *(REPO / "notebooks").glob("*.py"),
    ]
)


def _chain(node: ast.AST) -> list[str] | None:
    """The steps of an expression of names, attributes and subscripts (`run.metrics.x["a"]`
    -> run, metrics, x, []); None for anything else (a call)."""
    steps: list[str] = []
    while isinstance(node, ast.Attribute | ast.Subscript):
        steps.insert(0, node.attr if isinstance(node, ast.Attribute) else "[]")
        node = node.value
    return [node.id, *steps] if isinstance(node, ast.Name) else None


def _unwrapped(kind: Any) -> Any:
    """`X` of `X | None`."""
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return args[0] if type(None) in typing.get_args(kind) and len(args) == 1 else kind


def _section_at(steps: list[str]) -> bool:
    """Whether `steps`, followed from a MetricsDocument, end at the document or one of its
    typed sections (or subscript one on the way), not at a value: a mapping the classes
    declare, a list, a string, any JSON value."""
    kind: Any = MetricsDocument
    for step in steps:
        kind = _unwrapped(kind)
        if dataclasses.is_dataclass(kind):
            if step == "[]":
                return True
            kind = typing.get_type_hints(kind).get(step, Any)
        elif step == "[]" and typing.get_args(kind):
            kind = typing.get_args(kind)[-1]
        else:
            return False
    return dataclasses.is_dataclass(_unwrapped(kind))


def untyped_reads(source: str) -> list[str]:
    """Each untyped read of a metrics document in `source` (the module's docstring says what
    counts), as the line and the expression."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("json.load", "json.loads"):
            if "metrics" in ast.unparse(node):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
            continue
        if isinstance(node, ast.Subscript):
            target = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr != "get":
                continue
            target = node.func.value
        else:
            continue
        chain = _chain(target) or []
        named = [i for i, name in enumerate(chain) if "metrics" in name]
        if named and _section_at(chain[named[-1] + 1 :]):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_check_catches_untyped_reads():
    planted = [
        'metrics["aggregates"]["stage_ms"]',
        'run.metrics.get("cost")',
        'metrics.environment.get("gpu_name")',
        'metrics_b.cost["gpu_ms_per_page"]',
        'metrics.roofline.per_stage["sam"]["flops_total"]',
        'json.loads((run_dir / "metrics.json").read_text())',
    ]
    assert [len(untyped_reads(line)) for line in planted] == [2, 1, 1, 1, 1, 1]
    # A reader that names the document otherwise is caught where it took it from one.
    assert len(untyped_reads('cost = metrics.cost\nvalue = metrics.cost.get("x")')) == 1
    typed = [
        'metrics.aggregates.stage_ms["prefill"].mean',
        'metrics.config["operators"]["enabled"]',
        'metrics.timeline.get("decode")',
        'baseline.metrics.static.params.get("total")',
        'json.loads(gate_path.read_text())',
        "metrics.config_hash[:12]",
        'comparison["rows"]',
    ]
    assert [untyped_reads(line) for line in typed] == [[]] * len(typed)


@pytest.mark.parametrize("path", READERS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_readers_use_attributes(path: Path):
    assert untyped_reads(path.read_text(encoding="utf-8")) == []


def _no_telemetry() -> Telemetry:
    return Telemetry(available=False, reason="not recorded by this run")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.relative_to(MEASUREMENTS).as_posix())
def test_every_reader_reads_every_committed_document(path: Path):
    metrics = MetricsDocument.read(path)
    assert sentences.headline(metrics).startswith("On ")
    assert sentences.reliability_sentence(metrics).startswith("Reliability: ")
    assert metrics.config_hash[:12] in sentences.reproduce_sentence(metrics)
    quality.provenance_notes(metrics)
    assert len(quality.environment_table(metrics)) > 10
    quality.shards_table(metrics)
    assert len(quality.repeatability_table(metrics)) == len(metrics.repeatability.stages)
    assert len(timing.decode_latency_table(metrics)) == 2
    assert timing.page_split(metrics)["share (%)"].sum() == pytest.approx(100.0)
    assert len(utilisation.peaks_table(metrics)) == 2
    utilisation.missing_peak_reasons(metrics)
    utilisation.decode_roofline_table(metrics)
    if metrics.roofline is not None:
        assert len(utilisation.roofline_points(metrics)) > 0
    assert len(operators.timeline_table(metrics)) == len(metrics.timeline or {})
    assert len(static_compute.params_table(metrics)) == len(metrics.static.params)
    static_compute.counted_work_note(metrics)
    assert cost.cost_sentence(metrics.cost).startswith(("A page of", "No cost per page"))
    cost.cost_table(metrics.cost)
    assert len(throughput.rates_table(metrics)) == 3
    throughput.shard_walls_table(metrics)
    use = findings.utilisation_findings(metrics)
    assert sentences.utilisation_sentences(use)
    centres = findings.cost_centres(metrics, None)
    assert findings.recommendations(metrics, None, centres)
    telemetry = metrics.telemetry or _no_telemetry()
    assert energy_sentence(telemetry).endswith(".")
    energy_table(telemetry)
    flagged_table(telemetry)
    assert host_sentence(metrics.host).endswith(".")
    assert model_entry(ModelPath("baseline", RELEASED, metrics))["pages"] == metrics.counts.images

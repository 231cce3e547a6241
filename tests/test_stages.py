"""Stage names, labels, definitions and nesting are defined once, in vlmprof.stages: the run
record schema and every layer read them from there, and no other module spells them again."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import vlmprof
from vlmprof import stages
from vlmprof.records import STAGE_COLUMNS, RunRecord

SRC = Path(vlmprof.__file__).parent
# Modules that still repeat a stage fact literally (display names, definitions, the vision
# parts in display order, record field names): each entry is a debt this test keeps from
# growing, and it fails once the module no longer needs its entry.
STILL_REPEATED: dict[str, str] = {}


def _strings(nodes: list[ast.expr | None]) -> list[str | None]:
    return [
        n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else None for n in nodes
    ]


def _restated(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) of each literal in `tree` that restates a fact of vlmprof.stages."""
    described = {
        pair
        for stage in stages.STAGES
        for text in (stage.label, stage.definition)
        if text != stage.name
        for pair in ((stage.name, text), (text, stage.name))
    }
    names = set(stages.STAGE_NAMES)
    parts = list(stages.VISION_PARTS)
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            pairs = list(zip(_strings(node.keys), _strings(node.values), strict=True))
            for key, value in pairs:
                if (key, value) in described:
                    yield node.lineno, f"stage {key!r} described as {value!r}"
            nesting = [(k, v) for k, v in pairs if k in names and v in names]
            if len(nesting) >= 2:
                yield node.lineno, f"stage nesting {dict(nesting)}"
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            values = _strings(node.elts)
            if any(values[i : i + len(parts)] == parts for i in range(len(values))):
                yield node.lineno, f"the vision parts listed: {values}"
        elif isinstance(node, ast.JoinedStr):
            tail = node.values[-1] if node.values else None
            if isinstance(tail, ast.Constant) and tail.value == "_ms" and len(node.values) == 2:
                yield node.lineno, "a record field name built by hand (use stages.record_field)"


def _modules() -> Iterator[tuple[str, ast.AST]]:
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative != "stages.py":
            yield relative, ast.parse(path.read_text(encoding="utf-8"))


def test_no_module_restates_the_stages():
    found = {name: list(_restated(tree)) for name, tree in _modules()}
    restated = [
        f"{name}:{line}: {what}"
        for name, hits in found.items()
        if name not in STILL_REPEATED
        for line, what in hits
    ]
    assert not restated, "read these from vlmprof.stages:\n" + "\n".join(restated)
    settled = [name for name in STILL_REPEATED if not found.get(name)]
    assert not settled, f"no longer repeat a stage fact; drop them from STILL_REPEATED: {settled}"


def test_the_scan_sees_each_kind_of_restatement():
    source = "\n".join(
        [
            'LABELS = {"sam": "SAM"}',
            'PARENTS = {"sam": "vision", "clip": "vision"}',
            'PARTS = ("sam", "clip", "projector")',
            'FIELD = f"{stage}_ms"',
            'MODULES = {"model.sam_model": "sam", "model.projector": "projector"}',
            'CHOSEN = ("vision", "llm_prefill", "prefill", "decode")',
        ]
    )
    lines = [line for line, _ in _restated(ast.parse(source))]
    assert lines == [1, 2, 3, 4]


def test_the_record_schema_has_a_field_for_every_recorded_stage():
    fields = {field.name for field in dataclasses.fields(RunRecord)}
    assert set(STAGE_COLUMNS) <= fields
    # Derived stages are computed by aggregation, never recorded.
    assert not {"llm_prefill_ms", "decode_per_token_ms"} & fields


def test_exclusive_parts_add_up_to_their_stage():
    assert stages.exclusive_parts("prefill") == ("sam", "clip", "projector", "llm_prefill")
    assert stages.exclusive_parts("vision") == stages.VISION_PARTS
    assert stages.exclusive_parts("decode") == ("decode",)
    assert stages.exclusive_parts("load") == ()

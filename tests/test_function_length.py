"""The timing pass and the variants read a step at a time: no function of
`vlmprof.runtime` or `vlmprof.variants` runs over 60 lines (an AST walk counts them)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vlmprof"
PACKAGES = ("runtime", "variants")
MOST_LINES = 60


def long_functions(source: str, most: int = MOST_LINES) -> list[tuple[str, int]]:
    """Every function or method of `source` (nested ones included) longer than `most`
    lines, from its first decorator to its last line, with its length."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(item.lineno for item in node.decorator_list)])
            lines = node.end_lineno - first + 1
            if lines > most:
                found.append((node.name, lines))
    return found


def _function(name: str, body_lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines))
    return f"{indent}def {name}():\n{body}"


def test_the_walk_finds_a_function_one_line_too_long_wherever_it_is():
    assert long_functions(_function("fits", MOST_LINES - 1)) == []
    assert long_functions(_function("long", MOST_LINES)) == [("long", MOST_LINES + 1)]
    # A decorator counts: 1 + the def line + 59 body lines.
    method = "class Shard:\n    @property\n" + _function("step", MOST_LINES - 1, "    ")
    assert long_functions(method) == [("step", MOST_LINES + 1)]
    nested = "def outer():\n" + _function("inner", MOST_LINES, "    ") + "    return inner\n"
    assert [name for name, _ in long_functions(nested)] == ["outer", "inner"]
    assert long_functions(textwrap.dedent("async def run():\n    pass\n")) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_of_the_package_runs_over_60_lines(package: str):
    too_long = {
        f"{path.relative_to(SRC)}:{name}": lines
        for path in sorted((SRC / package).rglob("*.py"))
        for name, lines in long_functions(path.read_text(encoding="utf-8"))
    }
    assert not too_long, f"functions over {MOST_LINES} lines (split them into steps): {too_long}"

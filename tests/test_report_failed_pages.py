"""Both notebooks of a real workflow run on a folder of pages that fail in every way a file
can: each failed page listed with its reason, failures counted in pages and records, quiet
render logs, alt text on every figure, and no operator caption without an operator pass.

The run is the session's `awkward_run` (tests/conftest.py), which the transformers-VLM tests
read too."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.awkward_pages import BAD_PAGES, GOOD_PAGES, REPEATS
from tests.test_report_tables import executed_outputs
from tests.test_report_variants import execute
from vlmprof.report.operators import NO_OPERATOR_PASS

pytestmark = pytest.mark.slow

NOTEBOOKS = ("report", "stakeholder_summary")
NOISE = ("Kernel is running over TCP without encryption", "Alternative text is missing")
OPERATOR_CAPTION = "the bars show which stage each category's time falls in"


def ids_by_file(run_dir: Path) -> dict[str, str]:
    """Image id of each file name, as inputs/subset.csv gives them."""
    subset = pd.read_csv(run_dir / "inputs" / "subset.csv", dtype={"image_id": str})
    return {
        Path(path).name: image_id
        for image_id, path in zip(subset.image_id, subset.path, strict=True)
    }


def section(markdown: str, title: str) -> str:
    """The text of the `## title` section of an exported page."""
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_both_notebooks_render_with_every_kind_of_failed_page(awkward_run: Path):
    for notebook in NOTEBOOKS:
        executed_outputs(awkward_run / f"{notebook}.ipynb")
        assert (awkward_run / f"{notebook}.html").stat().st_size > 0
    assert (awkward_run / "figures" / "thumbnail_grid.png").read_bytes().startswith(b"\x89PNG")


def test_report_lists_each_failed_page_with_its_path_and_reason(awkward_run: Path):
    ids = ids_by_file(awkward_run)
    failures = section((awkward_run / "report.md").read_text(), "Failures")
    rows = {
        cells[0]: cells[1:]
        for cells in (
            re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", failures, re.S)
        )
        if cells
    }
    assert set(rows) == {ids[name] for name in BAD_PAGES}
    for name, reason in BAD_PAGES.items():
        path, repeats, shown = (cell.strip() for cell in rows[ids[name]])
        assert Path(path).name == name
        assert int(repeats) == REPEATS
        assert reason in shown, (name, shown)


def test_failures_are_counted_in_pages_and_records(awkward_run: Path):
    pages = len(GOOD_PAGES) + len(BAD_PAGES)
    counted = (
        f"{len(BAD_PAGES)} of {pages} pages failed "
        f"({len(BAD_PAGES) * REPEATS} of {pages * REPEATS} records)"
    )
    summary = (awkward_run / "stakeholder_summary.md").read_text()
    assert counted in section(summary, "Can these numbers be trusted?")
    assert counted in section(summary, "What to do about it")
    assert counted in (awkward_run / "report.md").read_text().split("\n## ", 1)[0]


def test_per_category_counts_ok_and_failed_pages(awkward_run: Path):
    table = pd.read_csv(awkward_run / "tables" / "per_category.csv")
    assert set(table["category"]) == {"uncategorised"}
    assert (table["ok pages"] == len(GOOD_PAGES)).all()
    assert (table["failed pages"] == len(BAD_PAGES)).all()
    prefill = table.set_index("stage").loc["prefill"]
    assert prefill["n"] == len(GOOD_PAGES) * REPEATS and prefill["mean (ms)"] > 0


def test_render_logs_carry_no_noise_and_every_figure_has_alt_text(awkward_run: Path):
    for notebook in NOTEBOOKS:
        for step in ("render", "export"):
            log = (awkward_run / "logs" / f"{step}_{notebook}.log").read_text()
            assert not [noise for noise in (*NOISE, "[IPKernelApp]") if noise in log], log
        page = (awkward_run / f"{notebook}.html").read_text()
        images = re.findall(r"<img [^>]*>", page)
        assert images, notebook
        for image in images:
            assert re.search(r"alt=['\"]Figure: \w", image), image[:300]


def test_without_operator_pass_no_caption_speaks_of_its_bars(awkward_run: Path, tmp_path: Path):
    assert OPERATOR_CAPTION in executed_outputs(awkward_run / "report.ipynb")
    run_dir = tmp_path / "awkward"
    shutil.copytree(awkward_run, run_dir, ignore=shutil.ignore_patterns("*.ipynb", "*.html"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["config"]["operators"]["enabled"] = False
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    shown = executed_outputs(execute(awkward_run.parents[1], "report", run_dir))
    assert NO_OPERATOR_PASS in shown
    assert OPERATOR_CAPTION not in shown

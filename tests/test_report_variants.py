"""The variant section of both notebooks: with no comparison, a baseline-only one, and
variants of every gate status made of the real run's metrics; and the variant figure."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.container import BarContainer

from tests.test_report_tables import executed_outputs
from tests.test_variants_comparison import (
    FAILED,
    PASSED,
    SWEEP,
    sped_up,
    write_gate,
)
from tests.workflow_helpers import snakemake_env
from vlmprof.atomic import write_text_atomic
from vlmprof.report import figures
from vlmprof.report import variants as shown_variants
from vlmprof.report.formatting import format_number
from vlmprof.report.run import COMPARISON_FILE, read_comparison
from vlmprof.variants import comparison as cmp

pytestmark = pytest.mark.slow


def execute(workflow_dir: Path, notebook: str, run_dir: Path) -> Path:
    """Execute notebooks/<notebook>.py on `run_dir` as the render rule does; the .ipynb."""
    out = run_dir / f"{notebook}.ipynb"
    env = snakemake_env() | {"MPLCONFIGDIR": str(run_dir / ".matplotlib")}
    source = run_dir / f"{notebook}.source.ipynb"
    for command in (
        ["jupytext", "--to", "ipynb", "--set-kernel", "python3", "--output", str(source)]
        + [str(workflow_dir / "notebooks" / f"{notebook}.py")],
        [sys.executable, "-m", "vlmprof.report.notebook_execute", str(source), str(out)]
        + ["--run-dir", str(run_dir)],
    ):
        done = subprocess.run(
            command, cwd=workflow_dir, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-5000:]
    return out


def copy_run(pipeline_run: Path, dest: Path) -> Path:
    """The run's folder without its rendered pages, to add a comparison to."""
    shutil.copytree(pipeline_run, dest, ignore=shutil.ignore_patterns("*.ipynb", "*.html"))
    shutil.rmtree(dest / "variants", ignore_errors=True)
    return dest


def save_comparison(run_dir: Path, runs: list[cmp.VariantRun]) -> dict:
    """Compare `runs` with the run in `run_dir` and write the comparison where the
    notebooks read it."""
    comparison = cmp.compare_variants(cmp.read_run(cmp.BASELINE, run_dir / "metrics.json"), runs)
    out = run_dir / "variants"
    cmp.write_comparison(comparison, out / "comparison.json", out / "comparison.csv")
    write_text_atomic(out / "comparison.md", shown_variants.to_markdown(comparison))
    return comparison


@pytest.fixture(scope="module")
def compared_run(pipeline_run: Path, workflow_dir: Path, tmp_path_factory) -> Path:
    """A copy of the run with a comparison of a passed variant (grouped experts, 1.25x as
    fast), a failed one and a sweep point (both 2x as fast), both notebooks executed on it."""
    folder = tmp_path_factory.mktemp("compared")
    run_dir = copy_run(pipeline_run, folder / "run")
    grouped = sped_up(run_dir / "metrics.json", folder / "grouped", 1.25)
    halve = sped_up(run_dir / "metrics.json", folder / "halved", 2.0)
    runs = [
        cmp.read_run(
            "grouped", grouped, write_gate(folder, "grouped", PASSED), {"experts": "grouped"}
        ),
        cmp.read_run("wrong", halve, write_gate(folder, "wrong", FAILED), {"compile": "max"}),
        cmp.read_run("crops2", halve, write_gate(folder, "crops2", SWEEP), {"max_crops": 2}),
    ]
    save_comparison(run_dir, runs)
    for notebook in ("report", "stakeholder_summary"):
        execute(workflow_dir, notebook, run_dir)
    return run_dir


@pytest.mark.parametrize("notebook", ["report", "stakeholder_summary"])
def test_a_run_without_variants_says_so_in_one_line(pipeline_run: Path, notebook: str):
    shown = executed_outputs(pipeline_run / f"{notebook}.ipynb")
    note = shown_variants.comparison_note(read_comparison(pipeline_run))
    assert note is not None and note in shown


def test_report_shows_each_variant_with_its_gate(compared_run: Path):
    shown = executed_outputs(compared_run / "report.ipynb")
    comparison = read_comparison(compared_run)
    rows = {(r["variant"], r["stage"]): r for r in comparison["rows"]}
    expected = [
        "experts: grouped",
        "failed gate: not a speedup",
        "different workload",
        shown_variants.gate_difference(FAILED | {"variant": "wrong"}),
        format_number(rows[("grouped", "decode")]["ms"]),
        format_number(rows[("grouped", "prefill")]["ratio"]),
        format_number(rows[("crops2", "decode")]["ratio"]),
        format_number(rows[("grouped", "decode")]["roofline_x_calibrated"]),
        format_number(100 * rows[("grouped", "decode")]["mbu_calibrated"]),
    ]
    missing = [value for value in expected if value not in shown]
    assert not missing, f"not shown in report.ipynb: {missing}"
    assert shown_variants.NO_COMPARISON_NOTE not in shown
    notebook = nbformat.read(compared_run / "report.ipynb", as_version=4)
    drawn = [
        cell
        for cell in notebook.cells
        if "variant_figure(" in cell.source
        and any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
    ]
    assert len(drawn) == 1, "the variant chart was not drawn"


def test_stakeholder_summary_names_what_each_variant_buys(compared_run: Path):
    shown = executed_outputs(compared_run / "stakeholder_summary.ipynb")
    assert "`wrong` (`compile: max`) failed the correctness check" in shown
    assert "731x the baseline's (limit 10x)" in shown
    # What "passed" means, once, with the closest call among those that passed.
    assert "\"Passed\" means: fed the baseline's tokens" in shown
    assert "The closest call among the variants that passed: `grouped`" in shown
    assert "`crops2` (`max_crops: 2`) computes a different workload" in shown
    for label in ("**Vision**", "**Decode**", "**Whole page**"):
        assert label in shown
    assert "`wrong` is" not in shown and "`crops2` is" not in shown


def test_stakeholder_summary_of_a_baseline_only_comparison(
    pipeline_run: Path, workflow_dir: Path, tmp_path: Path
):
    run_dir = copy_run(pipeline_run, tmp_path / "run")
    comparison = save_comparison(run_dir, [])
    shown = executed_outputs(execute(workflow_dir, "stakeholder_summary", run_dir))
    assert shown_variants.comparison_note(comparison) in shown


def bar_containers(ax) -> dict[str, BarContainer]:
    """The bar groups of an axis by label."""
    return {c.get_label(): c for c in ax.containers if isinstance(c, BarContainer)}


def test_variant_figure_leaves_failed_variants_out(compared_run: Path):
    comparison = json.loads((compared_run / COMPARISON_FILE).read_text())
    chart = shown_variants.chart_frame(comparison)
    fig = figures.variant_figure(chart, comparison["peak"])
    speedup, roofline = (bar_containers(ax) for ax in fig.axes)
    labels = ["grouped", "crops2 (different workload)"]
    assert list(speedup) == labels
    assert list(roofline) == ["baseline", *labels]
    grouped = chart[chart["variant"] == "grouped"]["ratio"].tolist()
    assert [p.get_width() for p in speedup["grouped"].patches] == pytest.approx(grouped)
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "wrong: failed gate, not shown" in legend


def test_the_throughput_latency_figure_has_one_point_per_costed_setting():
    settings = pd.DataFrame(
        [
            {
                "setting": "baseline",
                "gate": "baseline",
                "pages per batch": 1,
                "page latency p90 (ms)": 3000.0,
                "pages per GPU-day": 30000.0,
            },
            {
                "setting": "b8",
                "gate": "passed",
                "pages per batch": 8,
                "page latency p90 (ms)": 4000.0,
                "pages per GPU-day": 160000.0,
            },
            {
                "setting": "uncosted",
                "gate": "passed",
                "pages per batch": 1,
                "page latency p90 (ms)": None,
                "pages per GPU-day": None,
            },
        ]
    )
    ax = figures.throughput_latency_figure(settings).axes[0]
    points = [tuple(c.get_offsets()[0]) for c in ax.collections]
    assert points == [(3.0, 30000.0), (4.0, 160000.0)]
    assert [text.get_text() for text in ax.texts] == ["baseline (batch 1)", "b8 (batch 8)"]
    # Coloured as in the variant figure: the baseline grey, each variant its own colour.
    colours = [tuple(c.get_facecolor()[0]) for c in ax.collections]
    assert colours[0] == to_rgba(figures.BASELINE_COLOUR) != colours[1]
    # A comparison whose settings were never costed draws nothing rather than failing.
    assert not figures.throughput_latency_figure(settings[["setting"]]).axes[0].collections

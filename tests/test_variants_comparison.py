"""Variant comparison: built from the metrics of real CPU runs (the released MoE loop and
grouped_mm experts, frozen under tests/data/runs/), with every gate status, and written by
its workflow script."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.frozen_runs import CONFIGS, frozen_run
from tests.workflow_helpers import REPO, snakemake
from vlmprof.report import findings, sentences
from vlmprof.report import variants as shown
from vlmprof.variants import comparison as cmp
from vlmprof.variants.gate import not_applicable
from vlmprof.variants.paired import MIN_PAGES, TOO_FEW_PAGES

# The real CPU run (the released MoE loop) and the same pages with grouped_mm experts.
BASELINE_RUN = frozen_run("e2e")
GROUPED_RUN = frozen_run("e2e-grouped")
PAGES = CONFIGS["e2e"]["subset"]["n"]
# Gate contents for one variant; only the status and numbers vary between tests.
PASSED = {
    "status": "passed",
    "method": "teacher-forced",
    "criterion": "fed the baseline's tokens, every step within the factors",
    "pages": 3,
    "pages_same_picks": 3,
    "factors": {"code_path": 10.0, "precision": 1.5},
    "code_path_ratio": 1.2,
    "precision_ratio": None,
    "detail": "largest error 1.2x the baseline's",
}
FAILED = PASSED | {
    "status": "failed",
    "pages_same_picks": 1,
    "code_path_ratio": 731.0,
    "detail": "page_001: largest logit error 0.004 of the logit range, 731x the baseline's",
}
SWEEP = not_applicable("crops2", "max_crops 2: a different workload from the baseline")


@pytest.fixture(scope="module")
def grouped_run() -> Path:
    """The grouped_mm run's metrics.json."""
    return GROUPED_RUN / "metrics.json"


def write_gate(folder: Path, name: str, gate: dict) -> Path:
    """A gate.json of `name` with `gate`'s status and numbers."""
    path = folder / f"gate-{name}.json"
    path.write_text(json.dumps({"variant": name, **gate}))
    return path


def sped_up(metrics_path: Path, folder: Path, factor: float = 2.0) -> Path:
    """A copy of a run's metrics.json and tables whose per-page times are the real ones over
    `factor`: a variant whose every stage is exactly `factor` times as fast (by default twice)."""
    folder.mkdir(parents=True)
    shutil.copy2(metrics_path, folder / "metrics.json")
    (folder / "tables").mkdir()
    per_image = pd.read_csv(metrics_path.parent / "tables" / "per_image.csv", index_col=0)
    times = [c for c in per_image.columns if c.endswith(" (ms)")]
    per_image[times] = per_image[times] / factor
    per_image.to_csv(folder / "tables" / "per_image.csv")
    return folder / "metrics.json"


@pytest.fixture(scope="module")
def baseline() -> cmp.VariantRun:
    """The real CPU run as the baseline of every comparison."""
    return cmp.read_run(cmp.BASELINE, BASELINE_RUN / "metrics.json")


def _rows(comparison: dict, variant: str) -> dict[str, dict]:
    """One variant's comparison rows by stage."""
    return {r["stage"]: r for r in comparison["rows"] if r["variant"] == variant}


def summary_words(comparison: dict | None) -> str:
    """What the stakeholder summary says of a comparison."""
    return " ".join(sentences.variant_sentences(findings.variant_findings(comparison)))


def test_ratio_is_baseline_over_variant_mean_of_the_same_pages(
    baseline: cmp.VariantRun, grouped_run: Path, tmp_path: Path
):
    gate = write_gate(tmp_path, "grouped", PASSED)
    grouped = cmp.read_run("grouped", grouped_run, gate, {"experts": "grouped"})
    assert grouped.metrics.config["resolved"]["experts_implementation"] == "grouped_mm"
    assert baseline.metrics.config["resolved"]["experts_implementation"] == "eager"
    comparison = cmp.compare_variants(baseline, [grouped])
    rows = _rows(comparison, "grouped")
    base_pages = pd.read_csv(BASELINE_RUN / "tables" / "per_image.csv", index_col="image_id")
    mine_pages = pd.read_csv(grouped_run.parent / "tables" / "per_image.csv", index_col="image_id")
    for stage in ("prefill", "vision", "sam", "llm_prefill", "decode", "decode_per_token"):
        row = rows[stage]
        assert row["ms"] == pytest.approx(mine_pages[f"{stage} (ms)"].mean())
        assert row["baseline_ms"] == pytest.approx(base_pages[f"{stage} (ms)"].mean())
        assert row["ratio"] == pytest.approx(row["baseline_ms"] / row["ms"])
        # Three pages: a ratio, but too few pages for an interval or a verdict.
        assert row["pages"] == PAGES < MIN_PAGES
        assert row["ratio_low"] is None and row["noise_floor"] is None
        assert row["verdict"] == TOO_FEW_PAGES
    # The aggregate step keeps each page's shard: the unit the control measures drift in.
    assert set(base_pages["shard"]) == set(mine_pages["shard"]) == {0}
    # Every record ok and every page repeated alike: the ratio of page means is the ratio
    # of the stage means metrics.json reports.
    assert baseline.metrics.counts.error == grouped.metrics.counts.error == 0
    for stage in ("prefill", "decode", "decode_per_token"):
        means = [m.aggregates.mean_ms(stage) for m in (baseline.metrics, grouped.metrics)]
        assert rows[stage]["ratio"] == pytest.approx(means[0] / means[1], rel=1e-6)
    page = rows[cmp.PAGE]
    assert page["ms"] == pytest.approx(rows["prefill"]["ms"] + rows["decode"]["ms"])
    assert {r["status"] for r in _rows(comparison, cmp.BASELINE).values()} == {"baseline"}


def test_roofline_distance_is_one_over_the_larger_utilisation(baseline: cmp.VariantRun):
    rows = _rows(cmp.compare_variants(baseline, []), cmp.BASELINE)
    peak = "calibrated"  # a CPU run has no datasheet peak
    assert rows["prefill"]["roofline_x_datasheet"] is None
    for stage in ("prefill", "decode"):
        row = rows[stage]
        larger = max(row[f"mfu_{peak}"], row[f"mbu_{peak}"])
        assert row[f"roofline_x_{peak}"] == pytest.approx(1 / larger)
        assert row["bytes_counted"] is True
    assert rows["decode"][f"bound_{peak}"] == "memory"
    # Vision's bytes are counted too: its distance is 1 / MFU where compute bounds it, less
    # where memory does; either way the one aggregation wrote into metrics.json.
    vision = rows["vision"]
    written = baseline.metrics.roofline.per_stage["vision"].at(peak)
    assert vision[f"roofline_x_{peak}"] == pytest.approx(written.distance)
    assert vision["bytes_counted"] is True
    compute_only = 1 / vision[f"mfu_{peak}"]
    if vision[f"bound_{peak}"] == "compute":
        assert vision[f"roofline_x_{peak}"] == pytest.approx(compute_only)
    else:
        assert vision[f"bound_{peak}"] == "memory"
        assert vision[f"roofline_x_{peak}"] < compute_only
    # The whole page's bound is prefill's plus decode's.
    mfu = baseline.metrics.mfu
    bound_ms = sum(
        mfu.per_stage[s].time_ms_total / rows[s][f"roofline_x_{peak}"]
        for s in ("prefill", "decode")
    )
    page = rows[cmp.PAGE][f"roofline_x_{peak}"]
    assert page == pytest.approx(mfu.model_level.time_ms_total / bound_ms)
    assert rows["sam"][f"roofline_x_{peak}"] is None


def test_three_real_pages_are_too_few_to_call_even_twice_as_fast(
    baseline: cmp.VariantRun, tmp_path: Path
):
    fast = sped_up(BASELINE_RUN / "metrics.json", tmp_path / "fast")
    comparison = cmp.compare_variants(
        baseline, [cmp.read_run("fast", fast, write_gate(tmp_path, "fast", PASSED))]
    )
    for row in _rows(comparison, "fast").values():
        assert row["ratio"] == pytest.approx(2.0)
        assert row["verdict"] == TOO_FEW_PAGES
    assert set(comparison["best"].values()) == {None}
    words = summary_words(comparison)
    assert "**Decode**: no variant is measurably faster than the baseline" in words
    assert f"2.00x, no interval from 3 pages: {MIN_PAGES} are needed" in words
    assert "No A/A control ran" in words


def test_extra_warm_up_pays_back_after_the_pages_its_saving_covers(
    baseline: cmp.VariantRun, tmp_path: Path
):
    base_warmup = baseline.metrics.aggregates.warmup_ms.mean
    assert base_warmup > 0  # the shard timed its warm-up
    fast = sped_up(BASELINE_RUN / "metrics.json", tmp_path / "fast")
    metrics = json.loads(fast.read_text())
    metrics["aggregates"]["warmup_ms"]["mean"] = base_warmup + 10_000.0  # compiles for 10 s
    fast.write_text(json.dumps(metrics))
    comparison = cmp.compare_variants(
        baseline, [cmp.read_run("fast", fast, write_gate(tmp_path, "fast", PASSED))]
    )
    entry = next(v for v in comparison["variants"] if v["name"] == "fast")
    page = _rows(comparison, "fast")[cmp.PAGE]
    pages = 10_000.0 / (page["baseline_ms"] - page["ms"])
    assert entry["extra_warmup_ms"] == pytest.approx(10_000.0)
    assert entry["payback_pages"] == pytest.approx(pages)
    table = shown.gate_table(comparison).set_index("variant")
    assert table.loc["fast", "pays back after (pages)"] == f"{math.ceil(pages):,}"
    assert table.loc["fast", "warm-up (s)"] == pytest.approx(base_warmup / 1000.0 + 10.0)
    assert table.loc[cmp.BASELINE, "pays back after (pages)"] == "-"


@pytest.mark.parametrize(
    ("extra", "saving", "pages"), [(10.0, 4.0, 2.5), (-3.0, 2.0, 0.0), (5.0, 0.0, None)]
)
def test_payback_is_extra_warm_up_over_the_saving_per_page(extra, saving, pages):
    assert cmp.payback_pages(extra, saving) == pages


def test_a_failed_gate_is_never_a_speedup_nor_best(baseline: cmp.VariantRun, tmp_path: Path):
    # Twice as fast on every page, but its outputs differ: no ratio, never best.
    fast = sped_up(BASELINE_RUN / "metrics.json", tmp_path / "wrong")
    wrong = cmp.read_run("wrong", fast, write_gate(tmp_path, "wrong", FAILED))
    comparison = cmp.compare_variants(baseline, [wrong])
    rows = _rows(comparison, "wrong")
    assert all(r["ratio"] is None and r["ratio_low"] is None for r in rows.values())
    assert {r["verdict"] for r in rows.values()} == {"failed gate: not a speedup"}
    assert rows["prefill"]["ms"] == pytest.approx(rows["prefill"]["baseline_ms"] / 2)
    assert set(comparison["best"].values()) == {None}
    chart = shown.chart_frame(comparison)
    assert chart.loc[chart["variant"] == "wrong", "ratio"].isna().all()
    gates = shown.gate_table(comparison).set_index("variant")
    assert gates.loc["wrong", "gate"] == "failed"
    assert "731x the baseline's (limit 10x)" in gates.loc["wrong", "measured margin"]
    assert "same greedy picks on 1 of 3 pages" in gates.loc["wrong", "measured margin"]
    words = summary_words(comparison)
    assert "`wrong`" in words and "failed the correctness check" in words and "731x" in words
    assert "faster than" not in words
    assert "No optimisation passed the correctness check" in words


def test_a_sweep_point_is_a_different_workload_never_best(baseline: cmp.VariantRun, tmp_path: Path):
    fewer = sped_up(BASELINE_RUN / "metrics.json", tmp_path / "crops2")
    sweep = cmp.read_run("crops2", fewer, write_gate(tmp_path, "crops2", SWEEP), {"max_crops": 2})
    comparison = cmp.compare_variants(baseline, [sweep])
    rows = _rows(comparison, "crops2")
    assert rows["decode"]["ratio"] == pytest.approx(2.0)
    assert {r["verdict"] for r in rows.values()} == {"different workload"}
    assert set(comparison["best"].values()) == {None}
    assert shown.gate_table(comparison).iloc[1]["measured margin"] == SWEEP["detail"]
    words = summary_words(comparison)
    assert "`crops2` (`max_crops: 2`) computes a different workload" in words
    assert "0.50x the time" in words
    assert "faster than" not in words


def test_without_variants_the_comparison_holds_the_baseline(baseline: cmp.VariantRun):
    comparison = cmp.compare_variants(baseline, [])
    assert [v["name"] for v in comparison["variants"]] == [cmp.BASELINE]
    assert {r["variant"] for r in comparison["rows"]} == {cmp.BASELINE}
    note = shown.comparison_note(comparison)
    assert note.startswith("Only the baseline was profiled") and "variants:" in note
    assert summary_words(comparison) == note
    assert note in shown.to_markdown(comparison)
    assert summary_words(None) == shown.NO_COMPARISON_NOTE


def test_gate_files_are_checked(tmp_path: Path):
    with pytest.raises(ValueError, match="gate of 'other', expected 'grouped'"):
        cmp.read_gate(write_gate(tmp_path, "other", PASSED), "grouped")
    with pytest.raises(ValueError, match="allowed: passed, failed, not_applicable"):
        cmp.read_gate(write_gate(tmp_path, "x", PASSED | {"status": "ok"}), "x")


SNAKEFILE = """
rule compare_variants:
    input:
        baseline={baseline!r},
        metrics={metrics!r},
        gates={gates!r},
    output:
        json="out/comparison.json",
        csv="out/comparison.csv",
        md="out/comparison.md",
    log:
        "out/compare_variants.log",
    params:
        names={names!r},
        switches={switches!r},
    script:
        {script!r}
"""


def run_script(folder: Path, baseline: Path, variants: dict[str, tuple[Path, Path, dict]]):
    """Run workflow/scripts/compare_variants.py through Snakemake; the comparison it wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Snakefile").write_text(
        SNAKEFILE.format(
            baseline=str(baseline),
            metrics=[str(m) for m, _, _ in variants.values()],
            gates=[str(g) for _, g, _ in variants.values()],
            names=list(variants),
            switches=json.dumps({name: s for name, (_, _, s) in variants.items()}),
            script=str(REPO / "workflow" / "scripts" / "compare_variants.py"),
        )
    )
    result = snakemake(folder)
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads((folder / "out" / "comparison.json").read_text())


def test_script_writes_json_csv_and_markdown(
    baseline: cmp.VariantRun, grouped_run: Path, tmp_path: Path
):
    variants = {
        "grouped": (grouped_run, write_gate(tmp_path, "grouped", PASSED), {"experts": "grouped"}),
        "wrong": (grouped_run, write_gate(tmp_path, "wrong", FAILED), {"experts": "batched"}),
    }
    written = run_script(tmp_path / "two", BASELINE_RUN / "metrics.json", variants)
    runs = [cmp.read_run(n, m, g, s) for n, (m, g, s) in variants.items()]
    assert written == json.loads(json.dumps(cmp.compare_variants(baseline, runs)))
    out = tmp_path / "two" / "out"
    table = pd.read_csv(out / "comparison.csv")
    assert len(table) == 3 * len(written["stages"])
    assert table.loc[table["variant"] == "wrong", "ratio"].isna().all()
    markdown = (out / "comparison.md").read_text()
    assert "| wrong " in markdown and "failed gate: not a speedup" in markdown
    assert "731x the baseline" in markdown
    assert (out / "compare_variants.log").read_text().count("2 variants") == 1
    only = run_script(tmp_path / "none", BASELINE_RUN / "metrics.json", {})
    assert [v["name"] for v in only["variants"]] == [cmp.BASELINE]
    assert "Only the baseline" in (tmp_path / "none" / "out" / "comparison.md").read_text()


def _setting(name, status, latency, pages, money=None):
    return {
        "name": name,
        "status": status,
        "latency_p90_ms": latency,
        "pages_per_gpu_day": pages,
        "gpu_cost_per_1000_pages": money,
        "energy_cost_per_1000_pages": None,
        "cost_per_1000_pages": money,
    }


def test_the_cheapest_setting_within_the_bound_is_named():
    settings = [
        _setting("baseline", cmp.BASELINE, 9_000.0, 9_600.0),
        _setting("graphed", "passed", 2_000.0, 43_200.0),
        _setting("wrong", "failed", 500.0, 172_800.0),
        _setting("tiny", "not_applicable", 400.0, 216_000.0),
        _setting("grouped", "passed", 4_000.0, 21_600.0),
    ]
    pick = cmp.cheapest_within(settings, 5_000.0)
    # failed variants and sweep points are never candidates, however fast
    assert (pick["name"], pick["candidates"]) == ("graphed", 2)
    assert pick["by"] == "pages per GPU-day (no price set)"
    assert cmp.cheapest_within(settings, 10_000.0)["candidates"] == 3
    none = cmp.cheapest_within(settings, 1_000.0)
    assert none["name"] is None and "the fastest setting's p90 is 2,000 ms a page" in none["reason"]
    assert "latency_slo_ms" in cmp.cheapest_within(settings, None)["reason"]


def test_with_prices_the_cheapest_is_by_money_not_speed():
    settings = [
        _setting("baseline", cmp.BASELINE, 3_000.0, 28_800.0, money=1.0),
        _setting("fast-but-dear", "passed", 1_000.0, 86_400.0, money=2.0),
    ]
    pick = cmp.cheapest_within(settings, 5_000.0)
    assert (pick["name"], pick["by"]) == ("baseline", "cost per 1,000 pages")
    sentence = shown.slo_sentence({"latency_slo_ms": 5_000.0, "cheapest_within_slo": pick})
    assert sentence.startswith("Within a page latency of 5,000 ms (p90), the cheapest setting is")
    assert "`baseline`" in sentence and "1.00 per 1,000 pages" in sentence


def test_the_comparison_costs_every_setting_against_the_runs_bound(
    baseline: cmp.VariantRun, tmp_path: Path
):
    fast_path = sped_up(BASELINE_RUN / "metrics.json", tmp_path / "fast")
    fast = cmp.read_run("fast", fast_path, write_gate(tmp_path, "fast", PASSED))
    latency = baseline.metrics.cost.page_latency_ms.p90
    halved_latency = dataclasses.replace(baseline.metrics.cost.page_latency_ms, p90=latency / 2)
    fast.metrics.cost = dataclasses.replace(baseline.metrics.cost, page_latency_ms=halved_latency)
    bound = latency * 0.75
    bounded = dataclasses.replace(
        baseline,
        metrics=dataclasses.replace(baseline.metrics, config={"cost": {"latency_slo_ms": bound}}),
    )
    comparison = cmp.compare_variants(bounded, [fast])
    assert [s["name"] for s in comparison["settings"]] == [cmp.BASELINE, "fast"]
    assert comparison["latency_slo_ms"] == bound
    assert comparison["cheapest_within_slo"]["name"] == "fast"
    table = shown.settings_table(comparison).set_index("setting")
    assert table.loc["fast", "page latency p90 (ms)"] == pytest.approx(bound * 2 / 3)
    assert "`fast`" in shown.slo_sentence(comparison)
    unbounded = cmp.compare_variants(baseline, [fast])
    assert shown.slo_sentence(unbounded) is None

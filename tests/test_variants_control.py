"""The A/A control and calibrated verdicts: run records simulated with page noise and
run-level drift (each arm's shard a job of its own, with its own drift) go through the
aggregate step's tables and `compare_variants`; null variants rarely get a verdict, a real
speedup at four shards is called faster, and nothing is judged without a control."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vlmprof.data.subset import shard_pages
from vlmprof.jobs.aggregate import compare_variants as compare_job
from vlmprof.metrics.aggregate import per_image_table
from vlmprof.metrics.document import MetricsDocument
from vlmprof.report import variants as report_variants
from vlmprof.variants import comparison as cmp
from vlmprof.variants.control import CONTROL, CONTROL_VERDICT, control_arm
from vlmprof.variants.paired import (
    FASTER,
    JUDGED,
    MIN_PAGES,
    NOT_JUDGED,
    SLOWER,
    TOO_FEW_PAGES,
    holm,
)
from vlmprof.variants.switches import VariantError

PASSED = {"variant": "", "status": "passed", "criterion": "tokens identical", "detail": "ok"}
SWEEP = PASSED | {"status": "not_applicable"}
# A page's stage times (ms) at size 1; sam within vision within prefill.
STAGE_MS = {"sam_ms": 40.0, "vision_ms": 70.0, "prefill_ms": 100.0, "decode_ms": 300.0}
PAGES = 16
DRIFT, NOISE = 0.03, 0.01


def _records(
    rng: np.random.Generator,
    shards: dict[str, int],
    sizes: pd.Series,
    scale: dict[str, float] | None = None,
) -> list[dict]:
    """One ok run record per page of an arm: each of its shards (`shards`: each page's, as
    the timing shards split the subset) drifts by its own log-normal factor of DRIFT, each
    time by its own NOISE; `scale` multiplies chosen stage fields (0.8: 20% less time)."""
    drift = np.exp(rng.normal(0.0, DRIFT, max(shards.values()) + 1))
    noise = np.exp(rng.normal(0.0, NOISE, (len(sizes), len(STAGE_MS))))
    factors = np.array([(scale or {}).get(field, 1.0) * ms for field, ms in STAGE_MS.items()])
    return [
        {
            "image_id": image_id,
            "repeat": 0,
            "status": "ok",
            "shard": shard,
            **dict(zip(STAGE_MS, sizes[image_id] * drift[shard] * factors * page, strict=True)),
        }
        for (image_id, shard), page in zip(shards.items(), noise, strict=True)
    ]


def _run(name: str, records: list[dict], gate: dict | None = PASSED) -> cmp.VariantRun:
    """An arm as the comparison reads it: tables/per_image.csv as the aggregate step writes
    it (the baseline when `gate` is None)."""
    metrics = MetricsDocument.from_dict({"counts": {"ok": len(records)}})
    return cmp.VariantRun(
        name=name,
        switches={},
        gate=None if gate is None else {**gate, "variant": name},
        metrics=metrics,
        per_image=per_image_table(records),
    )


def _shards(pages: int, shards: int) -> dict[str, int]:
    """Each page's shard, split as the timing shards split the subset."""
    subset = pd.DataFrame({"image_id": [f"p{i:02d}" for i in range(pages)], "path": "p.png"})
    return {
        image_id: shard
        for shard in range(shards)
        for image_id, _ in shard_pages(subset, shard, shards)
    }


def _sizes(rng: np.random.Generator, pages: dict[str, int]) -> pd.Series:
    """Page sizes (time multipliers) of pages of different lengths."""
    return pd.Series(np.exp(rng.normal(0.0, 0.4, len(pages))), index=list(pages))


def _trial(
    seed: int,
    shards: int,
    variants: dict[str, dict[str, float]],
    control: bool = True,
    pages: int = PAGES,
) -> dict:
    """The comparison of one simulated run: baseline, the named variants (with their
    scales) and, when `control`, the A/A control; each arm's shards jobs of their own."""
    rng = np.random.default_rng(seed)
    split = _shards(pages, shards)
    sizes = _sizes(rng, split)
    baseline = _run(cmp.BASELINE, _records(rng, split, sizes), gate=None)
    arms = [_run(name, _records(rng, split, sizes, scale)) for name, scale in variants.items()]
    again = _run("control", _records(rng, split, sizes)) if control else None
    return cmp.compare_variants(baseline, arms, again)


def _rows(comparison: dict, variant: str) -> dict[str, dict]:
    return {r["stage"]: r for r in comparison["rows"] if r["variant"] == variant}


NULL_VARIANTS = {f"null{i}": {} for i in range(4)}


@pytest.mark.parametrize("shards", [1, 4])
def test_null_variants_under_drift_rarely_get_a_verdict(shards):
    # 3% drift per arm and shard, 1% page noise, four variants that change nothing: the
    # bootstrap rule, even against the control's interval, called 13-21% of stages.
    verdicts = [
        row["verdict"]
        for trial in range(60)
        for row in _trial(trial, shards, NULL_VARIANTS)["rows"]
        if row["status"] == "passed"
    ]
    assert set(verdicts) <= set(JUDGED) and len(verdicts) == 60 * 4 * 6
    wrong = sum(v in (FASTER, SLOWER) for v in verdicts) / len(verdicts)
    assert wrong <= 0.05


def test_a_real_20_percent_speedup_at_four_shards_is_called_faster():
    quicker = {field: 1 / 1.2 for field in STAGE_MS}
    pages = [_rows(_trial(100 + t, 4, {"fast": quicker}), "fast")[cmp.PAGE] for t in range(40)]
    called = sum(row["verdict"] == FASTER for row in pages) / len(pages)
    assert called >= 0.95
    assert all(row["ratio"] == pytest.approx(1.2, rel=0.1) for row in pages)
    # One shard measures the drift once: the same speedup is mostly within noise, and the
    # rows say how large a change that run could have called.
    once = [_rows(_trial(100 + t, 1, {"fast": quicker}), "fast")[cmp.PAGE] for t in range(40)]
    assert sum(row["verdict"] == FASTER for row in once) < len(once) / 2
    floor = np.median([row["noise_floor"] for row in once])
    assert floor > 0.2 > np.median([row["noise_floor"] for row in pages])


def test_without_a_control_nothing_is_judged():
    comparison = _trial(7, 4, {"fast": {"decode_ms": 0.5}}, control=False)
    rows = _rows(comparison, "fast")
    assert {row["verdict"] for row in rows.values()} == {NOT_JUDGED}
    decode = rows["decode"]
    assert decode["ratio_low"] < decode["ratio"] < decode["ratio_high"]  # pages only
    assert decode["drift_shards"] == 0 and decode["p"] is None
    assert comparison["best"]["decode"] is None
    assert NOT_JUDGED in comparison["method"]["verdict"]


def test_below_eight_pages_every_stage_reads_too_few_pages():
    quicker = {field: 0.5 for field in STAGE_MS}
    few = _rows(_trial(8, 1, {"fast": quicker}, pages=MIN_PAGES - 1), "fast")
    assert {row["verdict"] for row in few.values()} == {TOO_FEW_PAGES}
    assert few["decode"]["ratio"] == pytest.approx(2.0, rel=0.1)
    assert few["decode"]["ratio_low"] is None and few["decode"]["noise_floor"] is None
    enough = _rows(_trial(8, 1, {"fast": quicker}, pages=MIN_PAGES), "fast")
    assert enough["decode"]["ratio_low"] is not None


def test_the_reference_is_baseline_and_control_averaged_page_by_page():
    comparison = _trial(9, 4, {"fast": {"decode_ms": 0.8}})
    baseline, control = _rows(comparison, cmp.BASELINE), _rows(comparison, CONTROL)
    fast = _rows(comparison, "fast")["decode"]
    # Every arm timed every page: the reference's mean is the two arms' means averaged.
    reference = (baseline["decode"]["ms"] + control["decode"]["ms"]) / 2
    assert fast["baseline_ms"] == pytest.approx(reference)
    assert fast["ratio"] == pytest.approx(reference / fast["ms"])
    # The control's own row is the drift: baseline over control.
    drift = control["decode"]
    assert drift["ratio"] == pytest.approx(baseline["decode"]["ms"] / drift["ms"])
    assert drift["verdict"] == CONTROL_VERDICT and drift["drift_shards"] == 4
    assert fast["df"] == 4 and fast["drift_shards"] == 4


def test_verdicts_are_holm_corrected_in_two_families():
    comparison = _trial(10, 4, {"a": {"decode_ms": 0.9}, "b": {}, "c": {"sam_ms": 0.95}})
    tested = [r for r in comparison["rows"] if r["status"] == "passed"]
    page = [r for r in tested if r["stage"] == cmp.PAGE]
    stages = [r for r in tested if r["stage"] != cmp.PAGE]
    assert {r["family"] for r in page} == {"page"} and {r["family"] for r in stages} == {"stages"}
    for family in (page, stages):
        expected = holm([r["p"] for r in family])
        assert [r["p_adjusted"] for r in family] == pytest.approx(expected)
    for row in tested:
        judged = row["p_adjusted"] <= 0.05
        assert (row["verdict"] in (FASTER, SLOWER)) == judged
    untested = [r for r in comparison["rows"] if r["status"] != "passed"]
    assert all(r["p"] is None and r["family"] is None for r in untested)


def test_a_passed_twice_as_fast_variant_is_best_everywhere():
    comparison = _trial(11, 4, {"fast": {field: 0.5 for field in STAGE_MS}})
    rows = _rows(comparison, "fast")
    for row in rows.values():
        assert row["ratio"] == pytest.approx(2.0, rel=0.1)
        assert row["verdict"] == FASTER
    assert set(comparison["best"].values()) == {"fast"}


def test_a_failed_or_sweep_variant_is_never_judged():
    halved = {field: 0.5 for field in STAGE_MS}
    rng = np.random.default_rng(12)
    split = _shards(PAGES, 4)
    sizes = _sizes(rng, split)
    baseline = _run(cmp.BASELINE, _records(rng, split, sizes), gate=None)
    wrong = _run("wrong", _records(rng, split, sizes, halved), PASSED | {"status": "failed"})
    sweep = _run("crops2", _records(rng, split, sizes, halved), SWEEP)
    control = _run("control", _records(rng, split, sizes))
    comparison = cmp.compare_variants(baseline, [wrong, sweep], control)
    assert {r["verdict"] for r in _rows(comparison, "wrong").values()} == {
        "failed gate: not a speedup"
    }
    sweep_rows = _rows(comparison, "crops2")
    assert {r["verdict"] for r in sweep_rows.values()} == {"different workload"}
    assert sweep_rows["decode"]["ratio"] == pytest.approx(2.0, rel=0.1)
    assert set(comparison["best"].values()) == {None}


def test_the_control_is_an_arm_of_its_own():
    comparison = _trial(13, 4, {"graphed": {"decode_ms": 0.8}})
    assert comparison["control"] == "control"
    assert [v["name"] for v in comparison["variants"]] == ["baseline", "control", "graphed"]
    assert comparison["variants"][1]["status"] == CONTROL
    assert [s["name"] for s in comparison["settings"]] == ["baseline", "graphed"]
    control = _rows(comparison, "control")
    assert {r["verdict"] for r in control.values()} == {CONTROL_VERDICT}
    # The report's table prints each row's noise floor in percent.
    table = report_variants.comparison_table(comparison).set_index(["stage", "variant"])
    graphed = _rows(comparison, "graphed")["decode"]
    assert table.loc[("decode", "graphed"), "noise floor (%)"] == pytest.approx(
        100 * graphed["noise_floor"]
    )
    markdown = report_variants.to_markdown(comparison)
    assert "control: drift between runs" in markdown and "Holm" in markdown


def test_the_control_arm_follows_the_variants_and_its_settings():
    variants = {"grouped": {"experts": "grouped"}}
    assert control_arm(variants, {"enabled": True, "name": "control"}) == "control"
    assert control_arm(variants, {"enabled": True, "name": "aa"}) == "aa"
    assert control_arm({}, {"enabled": True, "name": "control"}) is None
    assert control_arm(variants, {"enabled": False, "name": "control"}) is None
    with pytest.raises(VariantError, match="variant_control.name: 'grouped' is taken by a var"):
        control_arm(variants, {"name": "grouped"})
    with pytest.raises(VariantError, match="taken by the baseline"):
        control_arm(variants, {"name": "baseline"})


def _write_run(folder: Path, run: cmp.VariantRun) -> tuple[Path, Path]:
    """A run's metrics.json, tables/per_image.csv and gate.json as the workflow writes them."""
    (folder / "tables").mkdir(parents=True)
    run.metrics.write(folder / "metrics.json")
    run.per_image.to_csv(folder / "tables" / "per_image.csv")
    gate = folder / "gate.json"
    if run.gate is not None:
        gate.write_text(json.dumps(run.gate))
    return folder / "metrics.json", gate


def test_the_job_takes_the_named_control_out_of_the_variants(tmp_path: Path):
    rng = np.random.default_rng(14)
    split = _shards(PAGES, 4)
    sizes = _sizes(rng, split)
    baseline = _run(cmp.BASELINE, _records(rng, split, sizes), gate=None)
    variant = _run("graphed", _records(rng, split, sizes, {"decode_ms": 0.5}))
    control = _run("control", _records(rng, split, sizes))
    base, _ = _write_run(tmp_path / "baseline", baseline)
    arms = {run.name: _write_run(tmp_path / run.name, run) for run in (variant, control)}
    out = [str(tmp_path / f"comparison.{ext}") for ext in ("json", "csv", "md")]
    metrics = [str(m) for m, _ in arms.values()]
    gates = [str(g) for _, g in arms.values()]
    switches = json.dumps({"graphed": {}, "control": {}})
    compare_job(str(base), metrics, gates, *out, names=list(arms), switches=switches,
                control="control")  # fmt: skip
    written = json.loads(Path(out[0]).read_text())
    assert written["control"] == "control"
    # The shards travelled through tables/per_image.csv: drift measured on all four.
    assert _rows(written, "graphed")["decode"]["drift_shards"] == 4
    assert _rows(written, "graphed")["decode"]["verdict"] == FASTER
    with pytest.raises(ValueError, match="control 'aa': not among the variant names"):
        compare_job(str(base), metrics, gates, *out, names=list(arms), switches=switches,
                    control="aa")  # fmt: skip

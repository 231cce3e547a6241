"""The A/A control: verdicts must clear the drift the baseline shows against itself, on
per-page data built with a known drift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vlmprof.jobs.aggregate import compare_variants as compare_job
from vlmprof.report import variants as report_variants
from vlmprof.variants import comparison as cmp
from vlmprof.variants.control import (
    CONTROL,
    CONTROL_VERDICT,
    control_arm,
    drift_verdict,
    judge_against_control,
)
from vlmprof.variants.switches import VariantError

PAGES = 12
PASSED = {"variant": "", "status": "passed", "criterion": "tokens identical", "detail": "ok"}


def _pages(scale: dict[str, float], seed: int) -> pd.DataFrame:
    """per_image.csv of PAGES pages: each stage's baseline time (pages of different sizes)
    times `scale[stage]`, with 0.3% page-to-page noise."""
    rng = np.random.default_rng(seed)
    base = {"sam": 40.0, "prefill": 100.0, "decode": 300.0}
    sizes = 1.0 + 0.1 * np.arange(PAGES)
    columns = {
        f"{stage} (ms)": ms * sizes * scale.get(stage, 1.0) * rng.normal(1.0, 0.003, PAGES)
        for stage, ms in base.items()
    }
    return pd.DataFrame(columns, index=pd.Index([f"p{i}" for i in range(PAGES)], name="image_id"))


def _run(name: str, scale: dict[str, float], seed: int, gate: dict | None = PASSED):
    """A run of the synthetic pages; the baseline when `gate` is None."""
    return cmp.VariantRun(
        name=name,
        switches={},
        gate=None if gate is None else {**gate, "variant": name},
        metrics={"peaks": {"reference": {}, "calibrated": {}}, "counts": {"ok": PAGES}},
        per_image=_pages(scale, seed),
    )


BASELINE = _run(cmp.BASELINE, {}, seed=0, gate=None)
# Every later job ran 4% slower: the drift the control sees on every stage.
DRIFT = 1.04
CONTROL_RUN = _run("control", {s: DRIFT for s in ("sam", "prefill", "decode")}, seed=1)
# SAM untouched but timed in the drifted window (3% slower); decode 25% faster; prefill 10%
# slower: beyond the drift.
VARIANT = _run("graphed", {"sam": 1.03, "prefill": 1.10, "decode": 0.8}, seed=2)


def _rows(comparison: dict, variant: str) -> dict[str, dict]:
    return {r["stage"]: r for r in comparison["rows"] if r["variant"] == variant}


def test_a_ratio_that_excludes_1_but_lies_in_the_drift_is_within_noise():
    alone = _rows(cmp.compare_variants(BASELINE, [VARIANT]), "graphed")
    assert alone["sam"]["ratio_high"] < 1.0 and alone["sam"]["verdict"] == "slower"
    with_control = cmp.compare_variants(BASELINE, [VARIANT], CONTROL_RUN)
    rows, control = _rows(with_control, "graphed"), _rows(with_control, "control")
    sam = rows["sam"]
    # The same interval, now inside the control's drift: not a measured slowdown.
    assert (sam["ratio_low"], sam["ratio_high"]) == (
        alone["sam"]["ratio_low"],
        alone["sam"]["ratio_high"],
    )
    assert control["sam"]["ratio_low"] < sam["ratio_high"] < 1.0
    assert sam["verdict"] == "within noise"
    assert (sam["control_low"], sam["control_high"]) == (
        control["sam"]["ratio_low"],
        control["sam"]["ratio_high"],
    )
    assert control["sam"]["ratio_high"] < 1.0 / (DRIFT - 0.02)


def test_ratios_that_clear_the_drift_keep_their_verdict():
    comparison = cmp.compare_variants(BASELINE, [VARIANT], CONTROL_RUN)
    rows = _rows(comparison, "graphed")
    assert rows["decode"]["ratio_low"] > 1.0 and rows["decode"]["verdict"] == "faster"
    assert rows["prefill"]["ratio_high"] < rows["prefill"]["control_low"]
    assert rows["prefill"]["verdict"] == "slower"
    assert comparison["best"]["decode"] == "graphed" and comparison["best"]["sam"] is None


def test_the_control_is_an_arm_of_its_own():
    comparison = cmp.compare_variants(BASELINE, [VARIANT], CONTROL_RUN)
    assert comparison["control"] == "control"
    assert [v["name"] for v in comparison["variants"]] == ["baseline", "control", "graphed"]
    assert comparison["variants"][1]["status"] == CONTROL
    control = _rows(comparison, "control")
    assert {r["verdict"] for r in control.values()} == {CONTROL_VERDICT}
    assert control["decode"]["ratio"] == pytest.approx(1 / DRIFT, rel=0.01)
    # The report's table prints the stage's control interval beside each row.
    table = report_variants.comparison_table(comparison)
    shown = table.set_index(["stage", "variant"])["control 95% interval"]
    assert shown[("SAM", "graphed")] == shown[("SAM", "baseline")] != "-"
    assert "control 95% interval" not in report_variants.comparison_table(
        cmp.compare_variants(BASELINE, [VARIANT])
    )
    assert "control: drift between runs" in report_variants.to_markdown(comparison)


def test_drift_towards_faster_raises_the_bar_for_faster():
    quicker = _run("control", {s: 1 / DRIFT for s in ("sam", "prefill", "decode")}, seed=3)
    slightly = _run("graphed", {"sam": 1 / 1.03, "decode": 0.8}, seed=4)
    rows = _rows(cmp.compare_variants(BASELINE, [slightly], quicker), "graphed")
    assert rows["sam"]["ratio_low"] > 1.0 and rows["sam"]["verdict"] == "within noise"
    assert rows["decode"]["verdict"] == "faster"


def test_the_rule_in_ratios():
    band = (0.95, 0.99)
    assert drift_verdict(1.001, 1.02, band) == "faster"
    assert drift_verdict(0.90, 0.94, band) == "slower"
    assert drift_verdict(0.96, 0.98, band) == "within noise"
    assert drift_verdict(0.90, 0.96, band) == "within noise"
    assert drift_verdict(1.01, 1.05, (1.0, 1.02)) == "within noise"
    assert drift_verdict(1.03, 1.05, (1.0, 1.02)) == "faster"
    # Without a control: against 1 alone.
    assert drift_verdict(0.96, 0.98, None) == "slower"
    assert drift_verdict(0.99, 1.01, None) == "within noise"


def test_fixed_readings_are_not_judged_again():
    rows = [
        {"variant": "c", "status": CONTROL, "stage": "sam", "ratio_low": 0.9, "ratio_high": 0.95,
         "verdict": CONTROL_VERDICT},
        {"variant": "w", "status": "failed", "stage": "sam", "ratio_low": None,
         "ratio_high": None, "verdict": "failed gate: not a speedup"},
        {"variant": "s", "status": "not_applicable", "stage": "sam", "ratio_low": 0.5,
         "ratio_high": 0.6, "verdict": "different workload"},
    ]  # fmt: skip
    judged = judge_against_control(rows)
    assert [r["verdict"] for r in judged] == [r["verdict"] for r in rows]
    assert {(r["control_low"], r["control_high"]) for r in judged} == {(0.9, 0.95)}


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
    (folder / "metrics.json").write_text(json.dumps(run.metrics))
    run.per_image.to_csv(folder / "tables" / "per_image.csv")
    gate = folder / "gate.json"
    if run.gate is not None:
        gate.write_text(json.dumps(run.gate))
    return folder / "metrics.json", gate


def test_the_job_takes_the_named_control_out_of_the_variants(tmp_path: Path):
    base, _ = _write_run(tmp_path / "baseline", BASELINE)
    arms = {run.name: _write_run(tmp_path / run.name, run) for run in (VARIANT, CONTROL_RUN)}
    out = [str(tmp_path / f"comparison.{ext}") for ext in ("json", "csv", "md")]
    metrics = [str(m) for m, _ in arms.values()]
    gates = [str(g) for _, g in arms.values()]
    switches = json.dumps({"graphed": {}, "control": {}})
    compare_job(str(base), metrics, gates, *out, names=list(arms), switches=switches,
                control="control")  # fmt: skip
    written = json.loads(Path(out[0]).read_text())
    assert written["control"] == "control"
    assert _rows(written, "graphed")["sam"]["verdict"] == "within noise"
    with pytest.raises(ValueError, match="control 'aa': not among the variant names"):
        compare_job(str(base), metrics, gates, *out, names=list(arms), switches=switches,
                    control="aa")  # fmt: skip

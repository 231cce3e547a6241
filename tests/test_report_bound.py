"""Each stage on its fastest gate-passed variant, its distance to its roofline bound, and the
stage the summary names as furthest from its bound."""

from __future__ import annotations

from vlmprof.report.findings import furthest_from_bound, variant_findings
from vlmprof.report.sentences import furthest_sentence, variant_sentences
from vlmprof.report.variants import bound_table

PEAK = "calibrated"


def _row(variant: str, stage: str, ms: float, distance: float | None, bound: str) -> dict:
    status = "baseline" if variant == "baseline" else "passed"
    return {
        "variant": variant,
        "status": status,
        "stage": stage,
        "ms": ms,
        "baseline_ms": ms,
        "pages": 3,
        "ratio": 1.0,
        "ratio_low": 0.9,
        "ratio_high": 1.1,
        "noise_floor": 0.1,
        "drift_shards": 4,
        "verdict": "within noise",
        f"roofline_x_{PEAK}": distance,
        f"bound_{PEAK}": bound,
    }


def _comparison(best: dict[str, str | None]) -> dict:
    rows = [
        _row("baseline", "vision", 50.0, 9.0, "compute"),
        _row("baseline", "llm_prefill", 25.0, 20.0, "compute"),
        _row("baseline", "decode", 600.0, 40.0, "memory"),
        _row("baseline", "model", 675.0, 30.0, "memory"),
        _row("graphed", "vision", 49.0, 8.8, "compute"),
        _row("graphed", "llm_prefill", 4.0, 3.2, "compute"),
        _row("graphed", "decode", 50.0, 3.3, "memory"),
        _row("graphed", "model", 103.0, 4.6, "memory"),
    ]
    variants = [
        {"name": "baseline", "status": "baseline", "records_ok": 6, "switches": {}, "gate": None},
        {"name": "graphed", "status": "passed", "records_ok": 6, "switches": {}, "gate": None},
    ]
    return {
        "baseline": "baseline",
        "variants": variants,
        "stages": ["vision", "llm_prefill", "decode", "model"],
        "peak": PEAK,
        "rows": rows,
        "best": best,
        "how_to_add": "name them",
    }


def test_each_stage_is_read_on_its_fastest_variant_or_the_baseline():
    comparison = _comparison({"vision": None, "llm_prefill": "graphed", "decode": "graphed"})
    table = bound_table(comparison).set_index("stage")
    assert table.loc["vision", "fastest (gate passed)"] == "baseline"
    assert table.loc["decode", "fastest (gate passed)"] == "graphed"
    assert table.loc["decode", f"x from roofline ({PEAK})"] == 3.3
    assert table.loc["decode", "bound by"] == "memory"


def test_the_furthest_stage_is_the_one_its_best_variant_leaves_furthest_from_its_bound():
    # graphed brings decode to 3.3x and LLM prefill to 3.2x; vision stays at 9x.
    comparison = _comparison({"vision": None, "llm_prefill": "graphed", "decode": "graphed"})
    furthest = furthest_from_bound(comparison)
    assert furthest.stage == "vision" and furthest.row["variant"] == "baseline"
    sentence = furthest_sentence(furthest)
    assert "**vision** is now the furthest from its limit (the baseline, still 9.00x" in sentence
    assert sentence in variant_sentences(variant_findings(comparison))
    # Without a faster variant, the baseline's own distances decide: decode, at 40x.
    baseline_only = furthest_from_bound(_comparison({}))
    assert baseline_only.stage == "decode" and baseline_only.row["variant"] == "baseline"


def test_no_comparison_names_no_stage():
    assert furthest_from_bound(None) is None
    assert variant_findings(None).furthest is None

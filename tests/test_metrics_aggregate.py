"""Aggregation of run records: stage statistics, nesting, counts, failures, repeatability."""

import pandas as pd
import pytest

from tests.records import page_facts, page_record
from vlmprof.metrics.aggregate import aggregate_records, per_image_table, stage_table
from vlmprof.records import RunRecord

# A tiled A4-like page and a page small enough to need no crops.
PAGES = {"page-a": (1240, 1754), "page-b": (600, 500)}


def record(image_id, repeat, scale=1.0, steps=(2.0, 2.2, 2.1), **changes):
    """An ok record whose times are a fixed profile scaled by `scale`."""
    values = {
        "prefill_ms": 100.0 * scale,
        "vision_ms": 60.0 * scale,
        "sam_ms": 40.0 * scale,
        "clip_ms": 18.0 * scale,
        "projector_ms": 2.0 * scale,
        "ttft_ms": 101.0 * scale,
        "decode_ms": sum(steps),
        "decode_step_ms": list(steps),
        "tokens": len(steps) + 1,
    }
    values.update(changes)
    return page_record(image_id, PAGES[image_id], repeat, **values)


def records_within_tolerance():
    return [
        record("page-a", 0, 1.00),
        record("page-a", 1, 1.02),
        record("page-a", 2, 0.99),
        record("page-b", 0, 0.50),
        record("page-b", 1, 0.51),
        record("page-b", 2, 0.50),
    ]


def test_counts_and_failures():
    error = RunRecord(run_id="r", image_id="page-c", repeat=0, status="error", error="OOM")
    agg = aggregate_records([*records_within_tolerance(), error.to_dict()])
    assert agg["counts"] == {
        "records": 7,
        "ok": 6,
        "error": 1,
        "images": 3,
        "images_failed": 1,
        "repeats": 3,
    }
    assert agg["failures"] == [{"image_id": "page-c", "repeat": 0, "error": "OOM"}]
    assert agg["aggregates"]["prefill_ms"]["n"] == 6


def test_llm_prefill_is_prefill_minus_vision():
    records = records_within_tolerance()
    stages = aggregate_records(records)["aggregates"]["stage_ms"]
    expected = [r["prefill_ms"] - r["vision_ms"] for r in records]
    assert stages["llm_prefill"]["mean"] == pytest.approx(sum(expected) / len(expected))
    assert stages["llm_prefill"]["mean"] < stages["prefill"]["mean"]
    assert stages["vision"]["mean"] < stages["prefill"]["mean"]


def test_stages_present_only_when_measured():
    stages = aggregate_records(records_within_tolerance())["aggregates"]["stage_ms"]
    assert "preprocess" not in stages and "load" not in stages
    assert {"prefill", "decode", "vision", "sam", "clip", "projector", "ttft"} <= set(stages)
    with_preprocess = [record("page-a", 0, preprocess_ms=5.0), record("page-a", 1)]
    stages = aggregate_records(with_preprocess)["aggregates"]["stage_ms"]
    assert stages["preprocess"]["n"] == 1


def test_decode_steps_are_pooled_and_throughput_counts_decode_tokens():
    records = [record("page-a", 0, steps=(1.0, 3.0)), record("page-a", 1, steps=(2.0, 2.0, 2.0))]
    agg = aggregate_records(records)["aggregates"]
    assert agg["stage_ms"]["decode_per_token"]["n"] == 5
    assert agg["stage_ms"]["decode_per_token"]["mean"] == pytest.approx(2.0)
    # tokens - 1 decode tokens over decode time: 2 / 4 ms and 3 / 6 ms, both 500 tok/s.
    assert agg["decode_tokens_per_s"] == pytest.approx(500.0)
    assert agg["tokens"]["mean"] == pytest.approx(3.5)
    assert "tokens generated in decode" in agg["rates"]["decode_tokens_per_s"]


def test_rates_are_totals_over_totals_not_means_of_each_records_rate():
    """A known timeline: a fast short page and a slow long one. Decode: 2 tokens in 2 ms
    and 20 tokens in 40 ms, 22 tokens in 42 ms in all (523.8 tokens/s; the mean of the two
    records' rates, 1,000 and 500, would say 750). GPU side: 3 + 21 output tokens, 2 pages,
    in 10 + 2 + 50 + 40 ms."""
    records = [
        record("page-a", 0, steps=(1.0, 1.0), prefill_ms=10.0),
        record("page-b", 0, steps=(2.0,) * 20, prefill_ms=50.0),
    ]
    agg = aggregate_records(records)["aggregates"]
    assert agg["decode_tokens_per_s"] == 22 / 42 * 1000
    assert agg["output_tokens_per_s_gpu_side"] == 24 / 102 * 1000
    assert agg["pages_per_s_gpu_side"] == 2 / 102 * 1000
    failed = RunRecord(run_id="x", image_id="page-b", repeat=1, status="error").to_dict()
    assert aggregate_records([*records, failed])["aggregates"]["decode_tokens_per_s"] == (
        22 / 42 * 1000
    )
    nothing = aggregate_records([failed])["aggregates"]
    assert nothing["decode_tokens_per_s"] is None and nothing["pages_per_s_gpu_side"] is None


def test_a_batchs_throughput_counts_its_pages_and_its_time_once():
    # Two pages decoded together, twice: each record holds the batch's times.
    batch = {"batch_size": 2, "batch": 0, "shard": 0, "steps": (2.0, 2.0)}
    records = [
        record("page-a", 0, input_wait_ms=30.0, **batch),
        record("page-b", 0, input_wait_ms=10.0, **batch),
        record("page-a", 1, **batch),
        record("page-b", 1, **batch),
    ]
    agg = aggregate_records(records)["aggregates"]
    # Per repeat, 2 pages x 2 decode tokens over 4 ms; 2 pages (6 tokens) over 100 + 4 ms.
    assert agg["decode_tokens_per_s"] == pytest.approx(1000.0)
    assert agg["pages_per_s_gpu_side"] == pytest.approx(2 / 104 * 1000)
    assert agg["output_tokens_per_s_gpu_side"] == pytest.approx(6 / 104 * 1000)
    assert agg["batch_size"]["mean"] == 2
    assert agg["input_wait_ms"]["mean"] == pytest.approx(20.0)
    # Records without host-clock spans give no end-to-end figure
    # (tests/test_metrics_end_to_end.py times those).
    assert agg["pages_per_s_end_to_end"] is None and agg["end_to_end"] is None


def test_repeatability_passes_within_tolerance():
    rep = aggregate_records(records_within_tolerance(), tolerance=0.10)["repeatability"]
    assert rep["pass"] is True
    assert rep["tolerance"] == 0.10
    assert rep["stages"]["prefill"]["images"] == 2
    # page-a prefill: 100, 102, 99 -> spread 3 / 100.33
    assert rep["stages"]["prefill"]["max_spread"] == pytest.approx(3 / (301 / 3))


def test_repeatability_fails_naming_the_stage():
    records = records_within_tolerance()
    records[1]["sam_ms"] *= 1.5
    rep = aggregate_records(records, tolerance=0.10)["repeatability"]
    assert rep["pass"] is False
    assert rep["failing_stages"] == ["sam"]
    assert rep["stages"]["sam"]["worst_image"] == "page-a"
    assert rep["stages"]["sam"]["max_deviation"] > 0.10


def test_repeatability_needs_two_repeats():
    rep = aggregate_records([record("page-a", 0), record("page-b", 0)])["repeatability"]
    assert rep["pass"] is None
    assert rep["stages"] == {}
    assert "two or more" in rep["reason"]


def test_stage_table_marks_nesting():
    table = stage_table(aggregate_records(records_within_tolerance()))
    assert list(table.columns) == [
        "mean (ms)",
        "std (ms)",
        "cv",
        "p50 (ms)",
        "p90 (ms)",
        "n",
        "nested_in",
    ]
    for stage in ("vision", "llm_prefill"):
        assert table.loc[stage, "nested_in"] == "prefill"
    for stage in ("sam", "clip", "projector"):
        assert table.loc[stage, "nested_in"] == "vision"
    assert pd.isna(table.loc["prefill", "nested_in"])
    assert table.loc["decode_per_token", "n"] == 18


def test_per_image_table_means_and_facts():
    table = per_image_table(records_within_tolerance())
    assert list(table.index) == ["page-a", "page-b"]
    assert table.loc["page-a", "prefill (ms)"] == pytest.approx(100.0 * (1.00 + 1.02 + 0.99) / 3)
    assert table.loc["page-b", "llm_prefill (ms)"] == pytest.approx(40.0 * (0.50 + 0.51 + 0.50) / 3)
    assert table.loc["page-a", "n_crops"] == page_facts(*PAGES["page-a"])["n_crops"] > 0
    assert table.loc["page-b", "image_tokens"] == 273
    assert table.loc["page-a", "repeats"] == 3
    assert "preprocess (ms)" not in table.columns


def test_per_image_table_keeps_each_pages_shard():
    records = records_within_tolerance()
    for record in records:
        record["shard"] = 0 if record["image_id"] == "page-a" else 1
    table = per_image_table(records)
    assert table["shard"].to_dict() == {"page-a": 0, "page-b": 1}

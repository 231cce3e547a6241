"""What a page costs, from records of a known timeline: its device time end to end (each
batch's wait for its pages and its run, taken to the page's real length), pages per day and
the price from it, each page's latency with its batch's wait (p50, p90 across pages), the
GPU side beside it; money only where a price is set; a CPU run in CPU time and whole pages."""

from __future__ import annotations

import pytest

from tests.test_metrics_end_to_end import shard_zero
from vlmprof.metrics.aggregate import aggregate_records
from vlmprof.metrics.cost import MS_PER_DAY, cost_section
from vlmprof.metrics.document import Cost
from vlmprof.report.cost import cost_sentence, cost_table, published_table
from vlmprof.typed_json import read_as

NO_TELEMETRY = {"available": False, "reason": "CPU run"}
TELEMETRY = {
    "available": True,
    "energy_j": {"prefill": {"mean": 40.0}, "decode": {"mean": 64.0}},
    "energy_price_per_kwh": 0.30,
}
# shard_zero's batches: 2 pages, prefill 250 ms and 4 decode steps of 187.5 ms, 2.9 s of wall
# time end to end for 4 pages (0.5 + 1.0 + 0.4 + 1.0 s).
STEP_S = 0.1875


def shown(cost: dict) -> Cost:
    """A built cost section as metrics.json's readers get it."""
    return read_as(Cost, cost, "cost")


def costed(records: list[dict], telemetry: dict = NO_TELEMETRY, **settings) -> dict:
    """The cost section of `records` as the pipeline builds it."""
    aggregates = aggregate_records(records)["aggregates"]
    return cost_section(records, aggregates, telemetry, settings)


def test_at_the_measured_length_the_figures_are_the_measured_rates():
    cost = costed(shard_zero(), output_tokens=5)
    assert cost["end_to_end_ms_per_page"] == pytest.approx(2900.0 / 4)
    assert cost["pages_per_gpu_day"] == pytest.approx(MS_PER_DAY / 725.0)
    assert cost["output_tokens_per_s_end_to_end"] == pytest.approx(20 / 2.9)
    # The GPU side: each batch's 1,000 ms shared by its 2 pages.
    assert cost["gpu_ms_per_page"] == pytest.approx(500.0)
    assert cost["output_tokens_per_s_gpu_side"] == pytest.approx(10.0)
    assert cost["host_ms_per_page"] == pytest.approx(225.0)  # 0.3, 0.2, 0.1, 0.3 s
    assert cost["processor"] == "GPU"


def test_a_page_of_real_length_adds_its_decode_steps_to_each_batchs_run():
    cost = costed(shard_zero(), output_tokens=9)
    # 4 more steps in each of the 2 batches' runs.
    extra_s = 4 * STEP_S
    assert cost["end_to_end_ms_per_page"] == pytest.approx((2.9 + 2 * extra_s) / 4 * 1000)
    assert cost["pages_per_gpu_day"] == pytest.approx(MS_PER_DAY / 1100.0)
    assert cost["output_tokens_per_s_end_to_end"] == pytest.approx(9 / 1.1)
    assert cost["gpu_ms_per_page"] == pytest.approx((1000.0 + extra_s * 1000) / 2)


def test_a_pages_latency_holds_its_batchs_wait_p50_and_p90_across_pages():
    # a: its 0.3 s load, the 0.2 s wait for b after it, the 1.0 s run: 1.5 s; b: 0.2 + 1.0;
    # c: 0.1 + 0.3 (d's load) + 1.0; d: 0.3 + 1.0.
    latency = costed(shard_zero(), output_tokens=5)["page_latency_ms"]
    assert latency["n"] == 4
    assert latency["p50"] == pytest.approx(1350.0)
    assert latency["p90"] == pytest.approx(1470.0)
    assert latency["max"] == pytest.approx(1500.0)
    # At the real length every page also waits its batch's 4 more decode steps.
    longer = costed(shard_zero(), output_tokens=9)["page_latency_ms"]
    assert longer["p50"] == pytest.approx(1350.0 + 4 * STEP_S * 1000)


def test_a_page_read_ahead_waits_its_batchs_whole_wait():
    records = shard_zero()
    # A worker read page a before the timing pass began to wait for the batch.
    records[0]["host_span_s"] = [9.0, 9.3]
    latency = costed(records, output_tokens=5)["page_latency_ms"]
    assert latency["max"] == pytest.approx((0.3 + 0.5 + 1.0) * 1000)


def test_money_figures_follow_the_price_and_the_end_to_end_time():
    cost = costed(shard_zero(), TELEMETRY, output_tokens=9, gpu_hour_price=3.6)
    assert cost["gpu_cost_per_1000_pages"] == pytest.approx(3.6 * 1100.0 / 3.6e6 * 1000)
    # 4 decode steps measured (5 tokens): 16 J per step; a batch's energy shared by 2 pages.
    assert cost["joules_per_page"] == pytest.approx((40.0 + 8 * 16.0) / 2)
    assert cost["energy_cost_per_1000_pages"] == pytest.approx(84.0 / 3.6e6 * 0.30 * 1000)
    table = cost_table(shown(cost))
    assert "cost per 1,000 pages (at 3.6 per GPU-hour)" in table.index
    assert "energy cost per 1,000 pages" in table.index
    assert "per 1,000 pages at 3.6 per GPU-hour" in cost_sentence(shown(cost))
    assert any("3.6 per GPU-hour, set in the configuration" in a for a in cost["assumptions"])
    unpriced = costed(shard_zero())
    assert unpriced["gpu_cost_per_1000_pages"] is None and unpriced["joules_per_page"] is None


def test_the_assumptions_name_the_length_mix_the_batching_and_the_price():
    assumptions = costed(shard_zero())["assumptions"]
    assert assumptions[0].startswith("static batching, 2 pages at a time")
    assert any(a.startswith("length mix: every page has output_tokens tokens") for a in assumptions)
    assert any(a.startswith("measured end to end: pages per GPU-day") for a in assumptions)
    assert any(a.startswith("no price") for a in assumptions)


def test_the_sentence_reads_end_to_end_first_beside_the_published_figures():
    cost = shown(costed(shard_zero(), output_tokens=5))
    sentence = cost_sentence(cost)
    assert sentence.startswith(
        "A page of 5 output tokens in batches of 2 pages holds the GPU 0.725 s end to end"
    )
    assert "0.500 s of it in prefill and decode (prefill 250.00 ms" in sentence
    assert "measured over 5 tokens" in sentence
    assert f"about {round(MS_PER_DAY / 725.0):,} pages per GPU-day" in sentence
    assert "a page waits 1.35 s (p50) and 1.47 s (p90) over 4 pages" in sentence
    published = published_table(cost)
    assert list(published["figure"]) == ["200k+ pages per day", "~2,500 tokens/s"]


def test_a_cpu_run_speaks_of_cpu_time_and_whole_pages():
    cost = costed(shard_zero(device="cpu"), output_tokens=5)
    assert cost["processor"] == "CPU"
    table = cost_table(shown(cost))["value"]
    assert table["pages per batch"] == 2 and isinstance(table["pages per batch"], int)
    assert table["pages per CPU-day, end to end"] == round(MS_PER_DAY / 725.0)
    assert "CPU time per page end to end (ms)" in table.index
    assert not [row for row in table.index if "GPU" in row]
    sentence = cost_sentence(shown(cost))
    assert "holds the CPU 0.725 s end to end" in sentence and "pages per CPU-day" in sentence
    assert "GPU" not in sentence and "2.00 pages" not in sentence
    assert any(a.startswith("measured end to end: pages per CPU-day") for a in cost["assumptions"])


def test_records_without_spans_say_there_is_no_end_to_end_figure():
    records = [
        {key: value for key, value in record.items() if not key.endswith("_span_s")}
        for record in shard_zero()
    ]
    cost = costed(records, output_tokens=5, gpu_hour_price=3.6)
    assert cost["available"] and cost["gpu_ms_per_page"] == pytest.approx(500.0)
    assert cost["end_to_end_ms_per_page"] is None and cost["page_latency_ms"] is None
    assert cost["pages_per_gpu_day"] is None and cost["gpu_cost_per_1000_pages"] is None
    assert "no end-to-end figure" in cost_sentence(shown(cost))


def test_no_timed_page_gives_a_reason_not_a_figure():
    aggregates = {"stage_ms": {"load": {"mean": 35.0}}, "tokens": {"mean": 33.0}}
    cost = cost_section([], aggregates, NO_TELEMETRY, {})
    assert cost == {"available": False, "reason": "no page was timed with at least two tokens"}
    assert cost_sentence(shown(cost)).startswith("No cost per page: no page was timed")
    assert cost_table(shown(cost)).empty and published_table(shown(cost)).empty

"""What a page costs: a page of real length from the measured prefill and time per token,
pages per GPU-day with and without the host, and money only where a price is set."""

from __future__ import annotations

import pytest

from vlmprof.metrics.cost import MS_PER_DAY, cost_section
from vlmprof.metrics.document import Cost
from vlmprof.report.cost import cost_sentence, cost_table, published_table
from vlmprof.typed_json import read_as


def shown(cost: dict) -> Cost:
    """A built cost section as metrics.json's readers get it."""
    return read_as(Cost, cost, "cost")


def _aggregates(**means: float) -> dict:
    stage_ms = {stage: {"mean": value} for stage, value in means.items()}
    return {"stage_ms": stage_ms, "tokens": {"mean": 33.0}}


AGGREGATES = _aggregates(prefill=80.0, decode_per_token=2.5, load=35.0, preprocess=150.0)
NO_TELEMETRY = {"available": False, "reason": "CPU run"}
TELEMETRY = {
    "available": True,
    "energy_j": {"prefill": {"mean": 40.0}, "decode": {"mean": 64.0}},
    "energy_price_per_kwh": 0.30,
}


def test_a_page_of_real_length_is_prefill_plus_its_decode_steps():
    cost = cost_section(AGGREGATES, NO_TELEMETRY, {"output_tokens": 1000})
    gpu_ms = 80.0 + 999 * 2.5
    assert cost["gpu_ms_per_page"] == pytest.approx(gpu_ms)
    assert cost["host_ms_per_page"] == pytest.approx(185.0)
    assert cost["pages_per_gpu_day"] == pytest.approx(MS_PER_DAY / gpu_ms)
    assert cost["pages_per_gpu_day_serial"] == pytest.approx(MS_PER_DAY / (gpu_ms + 185.0))
    assert cost["output_tokens_per_s"] == pytest.approx(1000 / gpu_ms * 1000)
    assert cost["measured_tokens"] == 33.0
    assert cost["gpu_cost_per_1000_pages"] is None and cost["joules_per_page"] is None


def test_money_figures_follow_the_prices():
    cost = cost_section(AGGREGATES, TELEMETRY, {"output_tokens": 101, "gpu_hour_price": 3.6})
    gpu_ms = 80.0 + 100 * 2.5
    assert cost["gpu_cost_per_1000_pages"] == pytest.approx(3.6 * gpu_ms / 3.6e6 * 1000)
    # 32 decode steps measured (33 tokens): 2 J per step.
    assert cost["joules_per_page"] == pytest.approx(40.0 + 100 * 2.0)
    assert cost["energy_cost_per_1000_pages"] == pytest.approx(240.0 / 3.6e6 * 0.30 * 1000)
    table = cost_table(shown(cost))
    assert "GPU cost per 1,000 pages (at 3.6 per GPU-hour)" in table.index
    assert "energy cost per 1,000 pages" in table.index
    assert "per 1,000 pages at 3.6 per GPU-hour" in cost_sentence(shown(cost))


def test_no_timed_page_gives_a_reason_not_a_figure():
    cost = cost_section(_aggregates(load=35.0), NO_TELEMETRY, {})
    assert cost == {"available": False, "reason": "no page was timed with at least two tokens"}
    assert cost_sentence(shown(cost)).startswith("No cost per page: no page was timed")
    assert cost_table(shown(cost)).empty and published_table(shown(cost)).empty


def test_the_sentence_says_what_it_assumes_and_stands_beside_the_published_figures():
    cost = cost_section(AGGREGATES, NO_TELEMETRY, {})
    sentence = cost_sentence(shown(cost))
    assert sentence.startswith("A page of 1,000 output tokens takes about 2.58 s of GPU time")
    assert "measured over 33.00 tokens" in sentence
    assert "if the host's 185.00 ms of loading and preprocessing run in series" in sentence
    assert "of GPU time one page at a time (prefill" in sentence
    assert cost["assumptions"][0] == "one page at a time (batch 1): the run's batch_size is 1"
    published = published_table(shown(cost))
    assert list(published["figure"]) == ["200k+ pages per day", "~2,500 tokens/s"]


def test_a_batch_shares_its_time_among_its_pages_and_each_page_waits_all_of_it():
    batched = {**AGGREGATES, "batch_size": {"mean": 8.0}}
    cost = cost_section(batched, TELEMETRY, {"output_tokens": 101, "gpu_hour_price": 3.6})
    batch_ms = 80.0 + 100 * 2.5
    assert cost["batch_size"] == 8.0
    assert cost["gpu_ms_per_page"] == pytest.approx(batch_ms / 8)
    assert cost["pages_per_gpu_day"] == pytest.approx(MS_PER_DAY / (batch_ms / 8))
    assert cost["latency_ms_per_page"] == pytest.approx(batch_ms + 185.0)
    assert cost["gpu_cost_per_1000_pages"] == pytest.approx(3.6 * batch_ms / 8 / 3.6e6 * 1000)
    assert cost["joules_per_page"] == pytest.approx((40.0 + 100 * 2.0) / 8)
    assert cost["assumptions"][0].startswith("pages generated 8 at a time")
    assert "of GPU time in batches of 8.00 pages (prefill" in cost_sentence(shown(cost))
    assert cost_table(shown(cost)).loc["pages per batch", "value"] == 8.0

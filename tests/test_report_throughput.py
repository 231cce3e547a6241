"""The report's throughput section: end to end first, the GPU side (a CPU run's processor)
and decode only beside it, each with what it counts; each shard's wall time."""

from __future__ import annotations

import pytest

from tests.test_metrics_end_to_end import shard_zero
from vlmprof.metrics.aggregate import aggregate_records
from vlmprof.metrics.document import MetricsDocument
from vlmprof.report.throughput import rates_table, shard_walls_table


def document(records: list[dict], device: str) -> MetricsDocument:
    """metrics.json's aggregates of `records` on `device`, as the report reads them."""
    aggregates = aggregate_records(records)["aggregates"]
    return MetricsDocument.from_dict(
        {"aggregates": aggregates, "environment": {"device_used": device}}
    )


def test_the_rates_lead_with_end_to_end_each_labelled():
    table = rates_table(document(shard_zero(), "cuda:0")).set_index("rate")
    assert list(table.index) == ["end to end", "GPU side", "decode only"]
    assert table.loc["end to end", "output tokens/s"] == pytest.approx(20 / 2.9)
    assert table.loc["GPU side", "pages/s"] == pytest.approx(2.0)
    assert table.loc["decode only", "output tokens/s"] == pytest.approx(32 / 3.0)
    assert table.loc["end to end", "what it counts"].startswith("output tokens/s end to end")
    on_cpu = rates_table(document(shard_zero(device="cpu"), "cpu"))
    assert list(on_cpu["rate"]) == ["end to end", "CPU side", "decode only"]


def test_each_shard_shows_its_wall_time_beside_its_elapsed_time():
    walls = shard_walls_table(document(shard_zero(), "cuda:0"))
    assert walls.to_dict("records") == [
        {
            "shard": 0,
            "device": "GPU-a",
            "pages": 4,
            "tokens": 20,
            "wall end to end (s)": pytest.approx(2.9),
            "first read to last token, measurement included (s)": pytest.approx(8.1),
        }
    ]
    spanless = [{k: v for k, v in r.items() if not k.endswith("_span_s")} for r in shard_zero()]
    assert shard_walls_table(document(spanless, "cuda:0")).empty

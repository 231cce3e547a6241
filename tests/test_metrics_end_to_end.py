"""The run's rates from records of a known timeline: end to end over the host-clock wall time
(the measurement's own work left out, shards on one device one after another, devices at
once), on the GPU side over prefill and decode (a batch's time once) and decode only; each
figure exact from the hand-made spans and times."""

from __future__ import annotations

from typing import Any

import pytest

from vlmprof.metrics.aggregate import aggregate_records
from vlmprof.metrics.end_to_end import batch_times, end_to_end
from vlmprof.records import RunRecord

# Every batch: prefill 250 ms, then 4 decode steps of 187.5 ms (750 ms): 5 tokens a page.
STEPS = (187.5,) * 4
PREFILL_MS, DECODE_MS, TOKENS = 250.0, 750.0, 5


def page(
    image_id: str,
    batch: int,
    repeat: int,
    run: tuple[float, float],
    host: tuple[float, float] | None = None,
    wait: tuple[float, float] | None = None,
    shard: int = 0,
    gpu: str = "GPU-a",
    batch_size: int = 2,
    device: str = "cuda:0",
) -> dict[str, Any]:
    """An ok record of one page of a batch; its load and wait spans on its first repeat only,
    as the timing pass keeps them."""
    first = repeat == 0
    placement = {"device": device, "dtype": "bfloat16", "gpu_index": 0, "gpu_uuid": gpu}
    if device == "cpu":
        placement = {"device": "cpu", "dtype": "float32"}
    return RunRecord(
        run_id="r",
        image_id=image_id,
        repeat=repeat,
        shard=shard,
        batch=batch,
        batch_size=batch_size,
        device=device,
        placement=placement,  # type: ignore[arg-type]
        tokens=TOKENS,
        prefill_ms=PREFILL_MS,
        decode_ms=DECODE_MS,
        decode_step_ms=list(STEPS),
        load_ms=None if host is None else (host[1] - host[0]) * 1000.0 / 4,
        preprocess_ms=None if host is None else (host[1] - host[0]) * 1000.0 * 3 / 4,
        input_wait_ms=None if wait is None else (wait[1] - wait[0]) * 1000.0,
        host_span_s=list(host) if first and host else None,
        wait_span_s=list(wait) if first and wait else None,
        run_span_s=list(run),
    ).to_dict()


def shard_zero(**where: Any) -> list[dict[str, Any]]:
    """Two batches of two pages, loaded inline (each page's wait is its own load), two
    repeats each, with the measurement's own work between wait and run (1.5 s, 1.0 s) and
    after the first run (the second repeat):

        10.0-10.5 wait (a 10.0-10.3, b 10.3-10.5) | 12.0-13.0 run | 13.5-14.5 repeat
        14.6-15.0 wait (c 14.6-14.7, d 14.7-15.0) | 16.0-17.0 run | 17.1-18.1 repeat

    Wall end to end 0.5 + 1.0 + 0.4 + 1.0 = 2.9 s; 4 pages, 20 tokens."""
    first, second = (12.0, 13.0), (16.0, 17.0)
    return [
        page("a", 0, 0, first, (10.0, 10.3), (10.0, 10.3), **where),
        page("b", 0, 0, first, (10.3, 10.5), (10.3, 10.5), **where),
        page("a", 0, 1, (13.5, 14.5), **where),
        page("b", 0, 1, (13.5, 14.5), **where),
        page("c", 1, 0, second, (14.6, 14.7), (14.6, 14.7), **where),
        page("d", 1, 0, second, (14.7, 15.0), (14.7, 15.0), **where),
        page("c", 1, 1, (17.1, 18.1), **where),
        page("d", 1, 1, (17.1, 18.1), **where),
    ]


def test_each_rate_from_a_known_timeline():
    agg = aggregate_records(shard_zero())["aggregates"]
    # End to end: the first repeats' 20 tokens (4 pages) over the 2.9 s wall.
    assert agg["output_tokens_per_s_end_to_end"] == pytest.approx(20 / 2.9)
    assert agg["pages_per_s_end_to_end"] == pytest.approx(4 / 2.9)
    # GPU side: every record's 5 tokens (40) over 4 batch runs of 250 + 750 ms, each once.
    assert agg["output_tokens_per_s_gpu_side"] == pytest.approx(40 / 4.0)
    assert agg["pages_per_s_gpu_side"] == pytest.approx(8 / 4.0)
    # Decode only: 4 tokens a record (the first is prefill's) over 4 decodes of 750 ms.
    assert agg["decode_tokens_per_s"] == pytest.approx(32 / 3.0)
    wall = agg["end_to_end"]
    assert wall["pages"] == 4 and wall["tokens"] == 20 and wall["devices"] == 1
    assert wall["wall_s"] == pytest.approx(2.9) and wall["device_s"] == pytest.approx(2.9)
    # From the first read to the last token, the measurement's own work included.
    assert wall["shards"][0]["elapsed_s"] == pytest.approx(8.1)
    assert set(agg["rates"]) >= {
        "output_tokens_per_s_end_to_end",
        "output_tokens_per_s_gpu_side",
        "decode_tokens_per_s",
    }


def test_end_to_end_is_a_total_over_a_total_not_a_mean_of_batch_rates():
    batches = batch_times(shard_zero())
    rates = [b.tokens / b.wall_s for b in batches]  # 10 / 1.5 and 10 / 1.4
    overall = aggregate_records(shard_zero())["aggregates"]["output_tokens_per_s_end_to_end"]
    assert overall == pytest.approx(20 / 2.9)
    assert overall != pytest.approx(sum(rates) / len(rates), rel=1e-6)


def test_shards_on_one_device_add_up_and_devices_run_at_once():
    # Shard 1 on another GPU: one batch, 0.5 s wait, 1.5 s run (2.0 s); shard 2 on the first
    # GPU again, after shard 0: 0.2 s wait and 0.8 s run (1.0 s).
    other = [
        page("e", 0, 0, (7.0, 8.5), (5.0, 5.3), (5.0, 5.3), shard=1, gpu="GPU-b"),
        page("f", 0, 0, (7.0, 8.5), (5.3, 5.5), (5.3, 5.5), shard=1, gpu="GPU-b"),
        page("g", 0, 0, (31.0, 31.8), (30.0, 30.2), (30.0, 30.2), shard=2, batch_size=1),
    ]
    wall = end_to_end([*shard_zero(), *other])
    assert wall is not None
    assert {s["shard"]: s["wall_s"] for s in wall["shards"]} == pytest.approx(
        {0: 2.9, 1: 2.0, 2: 1.0}
    )
    # GPU-a: 2.9 + 1.0 s one after another; GPU-b's 2.0 s beside them.
    assert wall["devices"] == 2
    assert wall["wall_s"] == pytest.approx(3.9)
    assert wall["device_s"] == pytest.approx(5.9)
    agg = aggregate_records([*shard_zero(), *other])["aggregates"]
    assert agg["output_tokens_per_s_end_to_end"] == pytest.approx(35 / 3.9)


def test_a_shards_first_read_counts_from_before_its_first_wait():
    # A worker process began loading 0.2 s before the timing pass first asked for a page, and
    # read the second page ahead while the first was waited for.
    records = [
        page("a", 0, 0, (6.0, 7.0), (4.8, 5.1), (5.0, 5.1)),
        page("b", 0, 0, (6.0, 7.0), (4.9, 5.05), (5.1, 5.1)),
    ]
    wall = end_to_end(records)
    assert wall is not None
    assert wall["wall_s"] == pytest.approx(0.2 + 0.1 + 1.0)


def test_records_without_spans_give_no_end_to_end_rate():
    records = [
        {key: value for key, value in record.items() if not key.endswith("_span_s")}
        for record in shard_zero()
    ]
    agg = aggregate_records(records)["aggregates"]
    assert agg["end_to_end"] is None
    assert agg["output_tokens_per_s_end_to_end"] is None
    assert agg["pages_per_s_end_to_end"] is None
    assert agg["output_tokens_per_s_gpu_side"] == pytest.approx(10.0)

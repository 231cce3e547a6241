"""Static batching's cost in metrics.json: each batch run's decode slot-steps counted once,
the idle ones' share, and decode tokens/s useful and over every slot-step."""

from __future__ import annotations

import pytest

from vlmprof.metrics.decode_slots import decode_slots
from vlmprof.metrics.document import MetricsDocument


def _batch(
    batch: int, repeat: int, tokens: list[int], decode_ms: float, shard: int = 0
) -> list[dict]:
    """The records of one batch run: its pages' tokens, and the batch's figures on each."""
    steps = max(tokens) - 1
    slot_steps = len(tokens) * steps
    idle = slot_steps - sum(count - 1 for count in tokens)
    return [
        {
            "image_id": f"page-{batch}-{page}",
            "repeat": repeat,
            "shard": shard,
            "batch": batch,
            "batch_size": len(tokens),
            "status": "ok",
            "tokens": count,
            "target_tokens": count,
            "target_source": "lognormal: mean 8, spread 0.5, seed 0, capped at 12",
            "decode_slot_steps": slot_steps,
            "idle_slot_steps": idle,
            "decode_ms": decode_ms,
        }
        for page, count in enumerate(tokens)
    ]


def test_each_batch_run_counts_once_and_the_idle_share_is_exact():
    # Batch 0: pages of 3, 12 and 7 tokens run 11 steps in 3 slots (33); the first page's
    # slot idles 9, the third's 5. Batch 1: one page of 5 tokens, 4 steps, none idle. Two
    # repeats each; a failed run counts nothing.
    records = [
        *_batch(0, 0, [3, 12, 7], 110.0),
        *_batch(0, 1, [3, 12, 7], 90.0),
        *_batch(1, 0, [5], 40.0),
        *_batch(1, 1, [5], 40.0),
        {"image_id": "page-2-0", "repeat": 0, "batch": 2, "status": "error", "error": "x"},
    ]
    slots = decode_slots(records)
    assert (slots["batch_runs"], slots["slot_steps"], slots["idle_slot_steps"]) == (
        4,
        2 * 33 + 2 * 4,
        2 * 14,
    )
    assert slots["idle_share"] == pytest.approx(28 / 74)
    # Decode time: each batch run's once, 280 ms.
    assert slots["useful_tokens_per_s"] == pytest.approx((74 - 28) / 0.28)
    assert slots["slot_steps_per_s"] == pytest.approx(74 / 0.28)
    assert slots["target_tokens"]["mean"] == pytest.approx((3 + 12 + 7 + 5) * 2 / 8)
    assert slots["output_length"].startswith("lognormal: mean 8")
    # Useful tokens are every page's tokens after its first, as decode tokens/s counts them.
    useful = sum(r["tokens"] - 1 for r in records if r["status"] == "ok")
    assert slots["slot_steps"] - slots["idle_slot_steps"] == useful


def test_the_same_batch_index_in_another_shard_is_another_run():
    records = _batch(0, 0, [2, 4], 30.0) + _batch(0, 0, [4, 4], 30.0, shard=1)
    assert decode_slots(records)["batch_runs"] == 2
    assert decode_slots(records)["idle_slot_steps"] == 2


def test_records_from_before_slot_steps_were_counted_have_no_section():
    old = [{"image_id": "a", "repeat": 0, "status": "ok", "tokens": 32, "decode_ms": 10.0}]
    assert decode_slots(old) is None
    document = MetricsDocument.from_dict({"aggregates": {"stage_ms": {}}})
    assert document.decode_slots is None
    written = MetricsDocument.from_dict(
        {"aggregates": {"stage_ms": {}}, "decode_slots": decode_slots(_batch(0, 0, [2], 5.0))}
    )
    assert written.decode_slots.idle_share == 0.0
    assert written.decode_slots.target_tokens.mean == 2

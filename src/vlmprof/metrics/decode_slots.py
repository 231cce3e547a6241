"""Static batching's cost, counted: the decode slot-steps a run's batches ran, and how many of
them ran for pages that had already ended.

A batch decodes until its longest page ends, every page keeping its slot meanwhile, so a
page that ends early leaves its slot running idle. Each record keeps its batch's decode
slot-steps (pages x decode steps) and the idle ones, as it keeps the batch's stage times;
here each batch's run counts once. Decode tokens/s is given twice: the useful tokens (the
slot-steps of pages still generating: a page's tokens after its first) over decode time, and
every slot-step over decode time, what the batches would give were no page to end early.
"""

from __future__ import annotations

from typing import Any

from vlmprof.metrics.aggregate import ok_records
from vlmprof.metrics.stats import summarize

DEFINITION = (
    "a batch decodes until its longest page ends, each page keeping its slot: slot_steps "
    "sums each batch run's pages x decode steps once, idle_slot_steps the steps a slot ran "
    "after its page had ended (its length or its end-of-sequence); the useful decode "
    "tokens are slot_steps - idle_slot_steps (each page's tokens after its first)"
)


def decode_slots(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run's decode slot-steps, the idle ones and their share, and decode tokens/s
    useful and over every slot-step, over the ok records' batch runs (each once: its shard,
    batch and repeat); None for records from before slot-steps were counted."""
    counted = [r for r in ok_records(records) if r.get("decode_slot_steps") is not None]
    if not counted:
        return None
    runs = {(r.get("shard"), r.get("batch"), r.get("repeat")): r for r in counted}
    slot_steps = sum(int(r["decode_slot_steps"]) for r in runs.values())
    idle = sum(int(r["idle_slot_steps"]) for r in runs.values())
    decode_s = sum(float(r["decode_ms"] or 0.0) for r in runs.values()) / 1000.0
    sources = sorted({str(r.get("target_source")) for r in counted})
    return {
        "output_length": "; ".join(sources),
        "target_tokens": summarize(r.get("target_tokens") for r in counted),
        "batch_runs": len(runs),
        "slot_steps": slot_steps,
        "idle_slot_steps": idle,
        "idle_share": idle / slot_steps if slot_steps else None,
        "useful_tokens_per_s": (slot_steps - idle) / decode_s if decode_s > 0 else None,
        "slot_steps_per_s": slot_steps / decode_s if decode_s > 0 else None,
        "definition": DEFINITION,
    }

"""A page's counted work as records keep it (flops/page_work.py counts it), read without
torch: what a generation's decode steps cost, from the two steps counted; and where a run's
work comes from, named."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class WorkSource(StrEnum):
    """Where a run's FLOPs and bytes come from: the model's analytic formulas at each
    record's shapes, or counted over each page's own untimed run (a model without formulas,
    `models.has_formulas`)."""

    FORMULAS = "formulas"
    COUNTED = "counted"


# What each source means, as metrics.json's `work` states it.
WORK_DESCRIPTIONS: dict[WorkSource, str] = {
    WorkSource.FORMULAS: "analytic, from the model's dimensions at each record's shapes "
    "(flops/analytic.py); the bytes as implemented are counted over each page's own run",
    WorkSource.COUNTED: "counted over each page's own untimed run (FlopCounterMode and a byte "
    "counter at PyTorch's dispatcher), kept in its run records' counted_work: the model has "
    "no analytic formulas",
}

# FLOPs; bytes of the matmul-class ops; bytes of every op (as implemented) and the part of
# them that reads weights. Records from before the last two were counted lack them.
WORK_KEYS = ("flops", "bytes", "bytes_as_implemented", "weight_bytes_as_implemented")


def decode_work(
    work: Mapping[str, Mapping[str, float]],
    prefill_len: int,
    tokens: int,
    context: int | None = None,
) -> dict[str, float]:
    """Work of a generation's tokens - 1 decode steps. The first counted step attends over
    prefill_len + 1 positions and each further position adds the growth between the two
    counted steps; step j attends over prefill_len + 1 + j, or every step over `context`.
    Each key both steps hold is extrapolated."""
    steps = max(tokens - 1, 0)
    first, second = work["decode_step"], work["decode_step_next"]
    if context is None:
        extra_positions = steps * (steps - 1) / 2
    else:
        extra_positions = steps * (context - prefill_len - 1)
    return {
        key: steps * first[key] + (second[key] - first[key]) * extra_positions
        for key in WORK_KEYS
        if key in first and key in second
    }

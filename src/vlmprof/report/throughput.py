"""The throughput section: the run's rates end to end, on the GPU side and decode only, each
with what it counts (metrics.json's `aggregates.rates`), and each shard's wall time."""

from __future__ import annotations

import pandas as pd

from vlmprof.metrics.document import MetricsDocument
from vlmprof.report.findings import on_cpu
from vlmprof.report.formatting import whole

RATES_COLUMNS: tuple[str, ...] = ("rate", "output tokens/s", "pages/s", "what it counts")
SHARD_COLUMNS: tuple[str, ...] = (
    "shard",
    "device",
    "pages",
    "tokens",
    "wall end to end (s)",
    "first read to last token, measurement included (s)",
)


def rates_table(metrics: MetricsDocument) -> pd.DataFrame:
    """One row per rate, end to end first (the headline), then the GPU side (the processor on
    a CPU run) and decode only: output tokens/s, pages/s and what each counts."""
    aggregates = metrics.aggregates
    rates = aggregates.rates
    rows = [
        (
            "end to end",
            aggregates.output_tokens_per_s_end_to_end,
            aggregates.pages_per_s_end_to_end,
            rates.get("output_tokens_per_s_end_to_end"),
        ),
        (
            "CPU side" if on_cpu(metrics) else "GPU side",
            aggregates.output_tokens_per_s_gpu_side,
            aggregates.pages_per_s_gpu_side,
            rates.get("output_tokens_per_s_gpu_side"),
        ),
        (
            "decode only",
            aggregates.decode_tokens_per_s,
            None,
            rates.get("decode_tokens_per_s"),
        ),
    ]
    return pd.DataFrame(rows, columns=list(RATES_COLUMNS))


def shard_walls_table(metrics: MetricsDocument) -> pd.DataFrame:
    """Each shard's pages, tokens and wall time end to end, beside the time from its first
    page read to its last token with the measurement's own work in it; empty for records
    from before their host-clock spans."""
    wall = metrics.aggregates.end_to_end
    rows = [
        (s.shard, s.device, whole(s.pages), whole(s.tokens), s.wall_s, s.elapsed_s)
        for s in ([] if wall is None else wall.shards)
    ]
    return pd.DataFrame(rows, columns=list(SHARD_COLUMNS))

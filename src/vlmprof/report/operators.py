"""The operator-pass sections: the timeline per stage, the top operators and the operator
categories by stage, as the profiler's analyses (`vlmprof.profiler`) wrote them."""

from __future__ import annotations

import pandas as pd

from vlmprof.metrics.document import MetricsDocument
from vlmprof.report.formatting import as_percent, display_name
from vlmprof.report.timed_busy import quoted_verdict
from vlmprof.stages import STAGE_NAMES

NO_OPERATOR_PASS = (
    "No operator pass in this run (operators.enabled: false): no operator tables and no timeline."
)


def timeline_table(metrics: MetricsDocument) -> pd.DataFrame:
    """Per stage of the operator pass: busy share, launches, mean op/kernel time, idle gaps
    and the launch-bound verdict. Empty when the operator pass was disabled."""
    timeline = metrics.timeline or {}
    rows = [
        {
            "stage": display_name(stage),
            "busy under profiler (%)": as_percent(t.busy_fraction),
            # Against the timing pass (vlmprof.metrics.dilation); absent in older runs.
            "busy vs timed stage (%)": as_percent(t.busy_fraction_timed),
            "profiler dilation (x)": t.dilation,
            "launches": t.launches,
            "mean kernel or op (us)": t.mean_kernel_us,
            "launch overhead (us)": t.launch_overhead_us,
            "launch overhead timed (us)": t.launch_overhead_us_timed,
            "idle in gaps (ms)": t.idle_gap_ms,
            "verdict": quoted_verdict(t),
            "basis": t.basis,
        }
        for stage, t in ((s, timeline[s]) for s in STAGE_NAMES if s in timeline)
    ]
    return pd.DataFrame(rows)


def _operator_stage_columns(operators: pd.DataFrame) -> list[str]:
    return [
        c for c in operators.columns if c.endswith(" (ms)") and c not in ("total (ms)", "self (ms)")
    ]


def top_operators(operators: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """The `n` operators with the most self time, their stage and shares (%)."""
    total = float(operators["self (ms)"].sum())
    top = operators.sort_values("self (ms)", ascending=False, kind="stable").head(n)
    return pd.DataFrame(
        {
            "operator": top["operator"],
            "category": top["category"],
            "stage": top["stage"].map(display_name),
            "calls": top["calls"],
            "self (ms)": top["self (ms)"],
            "share of all (%)": 100.0 * top["self (ms)"] / total,
            "share of its stage (%)": 100.0 * top["share of stage"],
        }
    ).reset_index(drop=True)


def operator_categories(operators: pd.DataFrame) -> pd.DataFrame:
    """Self time per operator category (ms), its share (%) and its split by stage (ms)."""
    stage_columns = _operator_stage_columns(operators)
    grouped = operators.groupby("category")[["self (ms)", *stage_columns]].sum()
    grouped = grouped.sort_values("self (ms)", ascending=False)
    grouped.insert(1, "share (%)", 100.0 * grouped["self (ms)"] / grouped["self (ms)"].sum())
    return grouped


def operator_stage_share(operators: pd.DataFrame) -> pd.DataFrame:
    """Category x stage: each category's share (%) of that stage's operator self time."""
    stage_columns = _operator_stage_columns(operators)
    by_category = operators.groupby("category")[stage_columns].sum()
    totals = by_category.sum()
    shares = 100.0 * by_category / totals.where(totals > 0)
    shares.columns = [c.removesuffix(" (ms)") for c in shares.columns]
    return shares

"""The A/A control: the baseline profiled again as one more arm, and verdicts that must
clear the drift it shows.

Baseline and variants run in separate jobs, minutes apart, and the host and GPU drift in
between; a bootstrap interval over pages covers page-to-page spread, not that drift. The
control runs the baseline's own settings, scheduled like a variant and after every other
arm, so its ratio to the baseline is drift alone, measured across the variants' time window.

Per stage, with ratios as speedups (baseline time / arm time, above 1: faster), a variant's
95% interval [low, high] and the control's [c_low, c_high] (the same statistic):

- faster when low > max(1, c_high)
- slower when high < min(1, c_low)
- within noise otherwise

So the variant's interval must exclude 1 and lie wholly beyond the control's on the same
side. A stage whose control has no interval (one page) is judged against 1 alone, as is every
stage of a run without a control.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmprof.variants.switches import BASELINE, VariantError

# The status of the control's comparison rows and its verdict on them.
CONTROL = "control"
CONTROL_VERDICT = "control: drift between runs"
JUDGED: tuple[str, ...] = ("faster", "slower", "within noise")
VERDICT_RULE = (
    "faster when the interval's low end exceeds both 1 and the control's high end, slower "
    "when its high end is below both 1 and the control's low end, else within noise (the "
    "control is the baseline profiled again after the variants: its interval is the drift "
    "between runs; without one, the interval is judged against 1 alone); only a variant whose "
    "gate passed is called faster, and the best of a stage is the faster one with the "
    "largest ratio"
)

Band = tuple[float, float]


def control_arm(variants: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
    """The control's name when the run profiles one (variants configured and the control
    enabled), else None; a name taken by a variant or the baseline is refused."""
    if not variants or not settings.get("enabled", True):
        return None
    name = settings.get("name", CONTROL)
    if name == BASELINE or name in variants:
        raise VariantError(
            f"variant_control.name: {name!r} is taken by "
            f"{'the baseline' if name == BASELINE else 'a variant'}; name the control otherwise"
        )
    return name


def drift_verdict(low: float, high: float, band: Band | None) -> str:
    """faster, slower or within noise for a speedup interval [low, high], given the
    control's interval `band` (None: judged against 1 alone)."""
    c_low, c_high = band if band is not None else (1.0, 1.0)
    if low > max(1.0, c_high):
        return "faster"
    if high < min(1.0, c_low):
        return "slower"
    return "within noise"


def control_bands(rows: list[dict[str, Any]]) -> dict[str, Band]:
    """Per stage, the control's interval from its comparison rows (stages without one left
    out)."""
    return {
        row["stage"]: (row["ratio_low"], row["ratio_high"])
        for row in rows
        if row["status"] == CONTROL
        and row["ratio_low"] is not None
        and row["ratio_high"] is not None
    }


def judge_against_control(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with each stage's control interval (control_low, control_high; None without a
    control) and every judged verdict taken again against it."""
    bands = control_bands(rows)
    judged = []
    for row in rows:
        band = bands.get(row["stage"])
        low, high = band if band is not None else (None, None)
        row = {**row, "control_low": low, "control_high": high}
        if row["status"] != CONTROL and row["verdict"] in JUDGED:
            row["verdict"] = drift_verdict(row["ratio_low"], row["ratio_high"], band)
        judged.append(row)
    return judged

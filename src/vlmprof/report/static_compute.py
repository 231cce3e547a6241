"""The static compute section: parameters per part of the model, and FLOPs per stage and
view counted three ways (analytic, FlopCounterMode, fvcore) with their agreement."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vlmprof.metrics.document import MetricsDocument, WorkSource
from vlmprof.report.formatting import as_percent

# Counts within this fraction of the analytic FLOPs agree with it.
AGREEMENT = 0.02


def params_table(metrics: MetricsDocument) -> pd.DataFrame:
    """Parameters (millions) of each part of the model."""
    params = metrics.static.params
    return pd.DataFrame(
        {"part": list(params), "parameters (M)": [v / 1e6 for v in params.values()]}
    )


def static_crosscheck(static: dict[str, Any]) -> pd.DataFrame:
    """Per stage and view: FLOPs counted three ways (GFLOP) and their differences (%).

    fvcore cannot see inside SDPA; "fvcore adjusted" adds those FLOPs back and removes its
    elementwise estimates. "agrees": yes (all within 2%), explained (fvcore's gap closes once
    adjusted), NO, or not counted.
    """
    rows = []
    for name, entry in static["stages"].items():
        gap = entry.get("fvcore_gap") or {}
        fcm, fv, adjusted = (
            entry.get("rel_diff_flopcountermode"),
            entry.get("rel_diff_fvcore"),
            gap.get("rel_diff_after"),
        )
        if fcm is None and fv is None:
            agrees = "not counted"
        elif abs(fcm or 0.0) <= AGREEMENT and abs(fv or 0.0) <= AGREEMENT:
            agrees = "yes"
        elif abs(fcm or 0.0) <= AGREEMENT and gap.get("explained"):
            agrees = "explained"
        else:
            agrees = "NO"
        rows.append(
            {
                "stage": name,
                "analytic (GFLOP)": entry["analytic"] / 1e9,
                "FlopCounterMode (GFLOP)": _giga(entry.get("flopcountermode")),
                "fvcore x2 (GFLOP)": _giga(entry.get("fvcore")),
                "FCM vs analytic (%)": as_percent(fcm),
                "fvcore vs analytic (%)": as_percent(fv),
                "fvcore adjusted vs analytic (%)": as_percent(adjusted),
                "agrees": agrees,
            }
        )
    return pd.DataFrame(rows)


def counted_work_note(metrics: MetricsDocument) -> str | None:
    """Why a model has no per-stage FLOP table: its work is counted per page (None when its
    work comes from formulas, costed stage by stage here)."""
    if metrics.work.source is WorkSource.FORMULAS:
        return None
    return (
        "This model has no analytic formulas: each page's FLOPs and bytes are counted over "
        "one untimed run of that page (FlopCounterMode and a byte counter at PyTorch's "
        "dispatcher) and kept in its run records (`counted_work`), so MFU and MBU use each "
        "page's own counts."
    )


def _giga(value: float | None) -> float | None:
    return None if value is None else value / 1e9

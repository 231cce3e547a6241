"""Compare two runs' metrics.json stage by stage and judge whether they agree.

Stage mean times decide the verdict (relative change within a tolerance); MFU changes are
listed beside them for reading but do not decide it, since they follow the times.

Usage: python -m vlmprof.compare RUN_A RUN_B --tolerance 0.1 [--out table.md]
(RUN_A/RUN_B: result folders holding metrics.json, or the metrics.json files themselves).
Exit code 0 when every stage agrees, 1 when one does not, 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.atomic import write_text_atomic

COLUMNS: tuple[str, ...] = ("kind", "A", "B", "delta %", "pass")


def _delta_pct(a: float | None, b: float | None) -> float | None:
    """Relative change from a to b in percent; None when either is missing or a is 0."""
    if a is None or b is None or a == 0:
        return None
    return (b - a) / a * 100.0


def _stage_rows(metrics_a: dict, metrics_b: dict, tolerance: float) -> list[dict[str, Any]]:
    """One row per stage measured in either run; a stage missing in one run fails."""
    stages_a = metrics_a["aggregates"]["stage_ms"]
    stages_b = metrics_b["aggregates"]["stage_ms"]
    rows = []
    for stage in [*stages_a, *(s for s in stages_b if s not in stages_a)]:
        a = stages_a.get(stage, {}).get("mean")
        b = stages_b.get(stage, {}).get("mean")
        delta = _delta_pct(a, b)
        rows.append(
            {
                "metric": stage,
                "kind": "mean (ms)",
                "A": a,
                "B": b,
                "delta %": delta,
                "pass": delta is not None and abs(delta) <= tolerance * 100.0,
            }
        )
    return rows


def _mfu_rows(metrics_a: dict, metrics_b: dict) -> list[dict[str, Any]]:
    """MFU of each stage and peak column in both runs (informational, pass left empty)."""
    per_stage_a = metrics_a.get("mfu", {}).get("per_stage", {})
    per_stage_b = metrics_b.get("mfu", {}).get("per_stage", {})
    rows = []
    for stage in [*per_stage_a, *(s for s in per_stage_b if s not in per_stage_a)]:
        for column in ("datasheet", "calibrated"):
            a = per_stage_a.get(stage, {}).get(column)
            b = per_stage_b.get(stage, {}).get(column)
            if a is None and b is None:
                continue
            rows.append(
                {
                    "metric": f"mfu {stage} ({column})",
                    "kind": "mfu",
                    "A": a,
                    "B": b,
                    "delta %": _delta_pct(a, b),
                    "pass": None,
                }
            )
    return rows


def compare_runs(metrics_a: dict, metrics_b: dict, tolerance: float = 0.10) -> pd.DataFrame:
    """Per stage: mean A, mean B, change in percent and pass (|change| <= tolerance); MFU too."""
    rows = _stage_rows(metrics_a, metrics_b, tolerance) + _mfu_rows(metrics_a, metrics_b)
    return pd.DataFrame(rows, columns=["metric", *COLUMNS]).set_index("metric")


def verdict(df: pd.DataFrame) -> str:
    """ "PASS" when every judged row passes, else "FAIL: " and the failing stages."""
    judged = df[df["pass"].notna()]
    failing = [str(name) for name, ok in judged["pass"].items() if not ok]
    return "PASS" if not failing else "FAIL: " + ", ".join(failing)


def _read_metrics(path: str | Path) -> dict[str, Any]:
    """metrics.json of a result folder (or the file itself), with a clear error if absent."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no metrics.json; run the pipeline for this run first")
    metrics = json.loads(file.read_text(encoding="utf-8"))
    if "stage_ms" not in metrics.get("aggregates", {}):
        raise ValueError(f"{file}: no aggregates.stage_ms; not a vlmprof metrics.json")
    return metrics


def compare_dirs(
    dir_a: str | Path, dir_b: str | Path, tolerance: float = 0.10
) -> tuple[pd.DataFrame, str]:
    """Compare the metrics.json of two result folders; returns the table and the verdict."""
    df = compare_runs(_read_metrics(dir_a), _read_metrics(dir_b), tolerance)
    return df, verdict(df)


def to_markdown(df: pd.DataFrame, result: str, tolerance: float) -> str:
    """The comparison as a Markdown table followed by the verdict line."""
    table = df.to_markdown(floatfmt=".4g")
    return f"{table}\n\nTolerance: {tolerance:.0%} on stage means. Verdict: {result}\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: print the comparison, optionally write it, exit 0 on PASS, 1 on FAIL."""
    parser = argparse.ArgumentParser(
        prog="python -m vlmprof.compare", description="Compare two vlmprof runs stage by stage."
    )
    parser.add_argument("run_a", help="result folder (or metrics.json) of the baseline run")
    parser.add_argument("run_b", help="result folder (or metrics.json) of the run to judge")
    parser.add_argument(
        "--tolerance", type=float, default=0.10, help="allowed relative change (0.1 = 10%%)"
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    try:
        df, result = compare_dirs(args.run_a, args.run_b, args.tolerance)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = to_markdown(df, result, args.tolerance)
    print(text, end="")
    if args.out is not None:
        write_text_atomic(args.out, text)
    return 0 if result == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Variants against the baseline, stage by stage: time, ratio, utilisation, roofline distance.

Every variant is a profiled run of the baseline's pages (its metrics.json and, beside it,
tables/per_image.csv as the aggregate step writes them) with the correctness gate's verdict.
Per stage the comparison holds the variant's mean time over the pages both runs measured,
the ratio baseline time / variant time (2.0: twice as fast) with a 95% interval from a
paired bootstrap over pages, MFU and MBU as metrics.json holds them, and how many times
the stage's time is above its roofline bound. The A/A control (`vlmprof.variants.control`),
when the run has one, gets its interval like a variant, and every verdict must clear it. A
variant that failed its gate keeps its times but gets no ratio; a sweep point (gate
not_applicable: other preset, mode or crops) gets a ratio labelled as a different workload;
only gate-passed variants can be a stage's best.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlmprof.atomic import atomic_open, write_json_atomic, write_text_atomic
from vlmprof.metrics.aggregate import STAGE_NESTING
from vlmprof.metrics.utilisation import PEAK_COLUMNS
from vlmprof.report.tables import STAGE_NAMES, format_number
from vlmprof.variants.control import (
    CONTROL,
    CONTROL_VERDICT,
    VERDICT_RULE,
    drift_verdict,
    judge_against_control,
)

BASELINE = "baseline"
GATE_STATUSES: tuple[str, ...] = ("passed", "failed", "not_applicable")
GATE_KEYS: tuple[str, ...] = ("variant", "status", "criterion", "detail")
# A page's prefill + decode, the stage MFU calls "model".
PAGE = "model"
# Image load and preprocessing run before the model and no switch touches them: not compared.
HOST_STAGES: tuple[str, ...] = ("load", "preprocess")
STAGE_ORDER: tuple[str, ...] = (
    *(s for s in STAGE_NAMES if s in STAGE_NESTING and s not in HOST_STAGES),
    PAGE,
)
DISPLAY_NAMES: dict[str, str] = {**STAGE_NAMES, PAGE: "whole page (prefill + decode)"}
# Stages with counted FLOPs (and, for prefill and decode, bytes) in metrics.json.
ROOFLINE_STAGES: tuple[str, ...] = ("vision", "llm_prefill", "prefill", "decode")
CHART_STAGES: tuple[str, ...] = (*ROOFLINE_STAGES, PAGE)
# The roof of a stage without a byte count (or bandwidth peak): its distance is an upper limit.
NO_BYTES = "compute (bytes not counted)"
RESAMPLES = 4000
SEED = 0
COMPARISON_FILE = Path("variants") / "comparison.json"
NO_COMPARISON = "No variant comparison in this run."
HOW_TO_ADD = (
    "to compare optimisations, name them under `variants:` in the config, each with the "
    "switches it sets over the baseline (e.g. `grouped: {experts: grouped}`), and rerun"
)
METHOD = {
    "ratio": "baseline time / variant time, each the mean over the pages both runs measured "
    "of that page's mean over its ok repeats (above 1: the variant is faster)",
    "interval": f"95% percentile interval of the same ratio over {RESAMPLES} paired bootstrap "
    f"resamples of the pages (seed {SEED}); none with fewer than two pages",
    "verdict": VERDICT_RULE,
    "roofline": "summed stage time over the time its counted FLOPs and bytes need at peak "
    "compute or bandwidth, whichever is longer (= 1 / max(MFU, MBU)); stages with FLOPs but "
    "no byte count use the compute bound only; the whole page adds the prefill and decode "
    "bounds",
}


@dataclass(frozen=True)
class VariantRun:
    """One profiled variant: name, switches, gate verdict (None for the baseline), its
    metrics.json and per-page stage means (tables/per_image.csv)."""

    name: str
    switches: dict[str, Any]
    gate: dict[str, Any] | None
    metrics: dict[str, Any]
    per_image: pd.DataFrame


def read_gate(path: str | Path, name: str) -> dict[str, Any]:
    """A gate.json, checked to belong to `name` and to carry a known status."""
    gate = json.loads(Path(path).read_text(encoding="utf-8"))
    missing = [key for key in GATE_KEYS if key not in gate]
    if missing:
        raise ValueError(f"{path}: gate without {', '.join(missing)}")
    if gate["variant"] != name:
        raise ValueError(f"{path}: gate of {gate['variant']!r}, expected {name!r}")
    if gate["status"] not in GATE_STATUSES:
        raise ValueError(
            f"{path}: gate status {gate['status']!r}; allowed: {', '.join(GATE_STATUSES)}"
        )
    return gate


def read_run(
    name: str,
    metrics_path: str | Path,
    gate_path: str | Path | None = None,
    switches: dict[str, Any] | None = None,
) -> VariantRun:
    """A variant from its metrics.json (tables/per_image.csv beside it) and gate.json."""
    metrics_path = Path(metrics_path)
    per_image_path = metrics_path.parent / "tables" / "per_image.csv"
    if not per_image_path.is_file():
        raise FileNotFoundError(f"{per_image_path}: missing; rerun the aggregate step of {name}")
    return VariantRun(
        name=name,
        switches=dict(switches or {}),
        gate=None if gate_path is None else read_gate(gate_path, name),
        metrics=json.loads(metrics_path.read_text(encoding="utf-8")),
        per_image=pd.read_csv(per_image_path, index_col="image_id"),
    )


def page_means(per_image: pd.DataFrame) -> dict[str, pd.Series]:
    """Each stage's mean time per page (ms), and the page's prefill + decode."""
    means = {
        stage: pd.to_numeric(per_image[f"{stage} (ms)"], errors="coerce").dropna()
        for stage in STAGE_ORDER
        if f"{stage} (ms)" in per_image.columns
    }
    if "prefill" in means and "decode" in means:
        means[PAGE] = (means["prefill"] + means["decode"]).dropna()
    return means


def ratio_interval(
    baseline: np.ndarray, variant: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float | None, float | None]:
    """95% interval of sum(baseline) / sum(variant) over paired bootstrap resamples of pages."""
    if len(baseline) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(baseline), size=(resamples, len(baseline)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = baseline[picks].sum(axis=1) / variant[picks].sum(axis=1)
    ratios = ratios[np.isfinite(ratios)]
    if not ratios.size:
        return None, None
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def _peaks(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The two peak columns of metrics.json by their MFU/MBU names."""
    peaks = metrics["peaks"]
    return {"datasheet": peaks["reference"], "calibrated": peaks["calibrated"]}


def _bound_ms(flops: float, moved: float | None, peak: dict[str, Any]) -> tuple[float, str] | None:
    """Time (ms) the work needs at the peak and which roof sets it; None without a peak."""
    if not peak.get("tflops") or flops <= 0:
        return None
    compute = flops / (peak["tflops"] * 1e12) * 1e3
    if moved is None or not peak.get("tbps"):
        return compute, NO_BYTES
    memory = moved / (peak["tbps"] * 1e12) * 1e3
    return (compute, "compute") if compute >= memory else (memory, "memory")


def roofline_distance(metrics: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per stage with counted work and per peak column: measured time over the roofline
    bound ("x"), the roof that sets the bound and whether bytes were counted."""
    mfu = metrics.get("mfu", {}).get("per_stage", {})
    mbu = metrics.get("mbu", {}).get("per_stage", {})
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for column, peak in _peaks(metrics).items():
        bounds: dict[str, tuple[float, str]] = {}
        for stage in ROOFLINE_STAGES:
            work = mfu.get(stage) or {}
            moved = (mbu.get(stage) or {}).get("bytes_total")
            bound = _bound_ms(work["flops_total"], moved, peak) if work.get("records") else None
            if bound is None:
                continue
            bounds[stage] = bound
            result.setdefault(stage, {})[column] = {
                "x": work["time_ms_total"] / bound[0],
                "bound": bound[1],
                "bytes_counted": bound[1] != NO_BYTES,
            }
        page = metrics.get("mfu", {}).get("model_level") or {}
        if page.get("records") and {"prefill", "decode"} <= set(bounds):
            bound_ms = bounds["prefill"][0] + bounds["decode"][0]
            result.setdefault(PAGE, {})[column] = {
                "x": page["time_ms_total"] / bound_ms,
                "bound": f"prefill {bounds['prefill'][1]} + decode {bounds['decode'][1]}",
                "bytes_counted": NO_BYTES not in (bounds["prefill"][1], bounds["decode"][1]),
            }
    return result


def _utilisation(metrics: dict[str, Any], stage: str) -> dict[str, float | None]:
    """MFU and MBU of a stage against both peaks, as metrics.json holds them."""
    mfu = metrics.get("mfu", {})
    compute = mfu.get("model_level") if stage == PAGE else mfu.get("per_stage", {}).get(stage)
    memory = metrics.get("mbu", {}).get("per_stage", {}).get(stage)
    return {
        f"{kind}_{column}": (entry or {}).get(column)
        for kind, entry in (("mfu", compute), ("mbu", memory))
        for column in PEAK_COLUMNS
    }


def _verdict(status: str, low: float | None, high: float | None) -> str:
    """How to read a row's ratio given the variant's gate status and interval."""
    fixed = {
        BASELINE: "baseline",
        "failed": "failed gate: not a speedup",
        "not_applicable": "different workload",
        CONTROL: CONTROL_VERDICT,
    }
    if status in fixed:
        return fixed[status]
    if low is None or high is None:
        return "not judged (one page)"
    return drift_verdict(low, high, None)


def _ratio(
    status: str, base: pd.Series, mine: pd.Series
) -> tuple[float | None, float | None, float | None]:
    """Ratio of mean baseline to mean variant time and its interval; none for a failed
    gate, no interval for the baseline itself."""
    if status == "failed" or not len(mine) or mine.mean() <= 0:
        return None, None, None
    ratio = float(base.mean() / mine.mean())
    if status == BASELINE:
        return ratio, None, None
    return (ratio, *ratio_interval(base.to_numpy(float), mine.to_numpy(float)))


def _rows(
    run: VariantRun, baseline: dict[str, pd.Series], stages: Sequence[str], status: str = ""
) -> list[dict[str, Any]]:
    """One row per stage of one variant (`status` its gate's, unless given) against the
    baseline's pages."""
    status = status or (BASELINE if run.gate is None else run.gate["status"])
    pages = page_means(run.per_image)
    roofline = roofline_distance(run.metrics)
    rows = []
    for stage in stages:
        base, mine = baseline[stage].align(pages.get(stage, pd.Series(dtype=float)), "inner")
        ratio, low, high = _ratio(status, base, mine)
        roof = roofline.get(stage, {})
        rows.append(
            {
                "variant": run.name,
                "status": status,
                "stage": stage,
                "ms": float(mine.mean()) if len(mine) else None,
                "baseline_ms": float(base.mean()) if len(base) else None,
                "pages": len(mine),
                "ratio": ratio,
                "ratio_low": low,
                "ratio_high": high,
                "verdict": _verdict(status, low, high) if len(mine) else "not measured",
                **_utilisation(run.metrics, stage),
                **{f"roofline_x_{c}": roof.get(c, {}).get("x") for c in PEAK_COLUMNS},
                **{f"bound_{c}": roof.get(c, {}).get("bound") for c in PEAK_COLUMNS},
                "bytes_counted": next((v["bytes_counted"] for v in roof.values()), None),
            }
        )
    return rows


def best_per_stage(rows: list[dict[str, Any]], stages: Sequence[str]) -> dict[str, Any]:
    """Per stage, the gate-passed variant measurably faster than the baseline with the
    largest ratio (None where there is none)."""
    best: dict[str, Any] = {}
    for stage in stages:
        faster = [
            r
            for r in rows
            if r["stage"] == stage and r["status"] == "passed" and r["verdict"] == "faster"
        ]
        winner = max(faster, key=lambda r: r["ratio"], default=None)
        best[stage] = None if winner is None else winner["variant"]
    return best


def _variant_entry(run: VariantRun, status: str = "") -> dict[str, Any]:
    """What the comparison records of a variant besides its stage rows."""
    counts = run.metrics.get("counts", {})
    return {
        "name": run.name,
        "status": status or (BASELINE if run.gate is None else run.gate["status"]),
        "switches": run.switches,
        "gate": run.gate,
        "run_name": run.metrics.get("run_name"),
        "config_hash": run.metrics.get("config_hash"),
        "records_ok": counts.get("ok"),
        "records_error": counts.get("error"),
    }


def headline_peak(metrics: dict[str, Any]) -> str:
    """The peak column a reader is shown: the datasheet where known, else the calibrated."""
    return "datasheet" if metrics["peaks"]["reference"].get("tflops") else "calibrated"


def compare_variants(
    baseline: VariantRun, variants: Sequence[VariantRun], control: VariantRun | None = None
) -> dict[str, Any]:
    """comparison.json content: variants (the A/A control, if any, after the baseline), one
    row per variant x stage with the stage's control interval, best per stage."""
    base_pages = page_means(baseline.per_image)
    stages = [s for s in STAGE_ORDER if s in base_pages]
    arms = [(baseline, ""), *([(control, CONTROL)] if control else [])]
    arms += [(variant, "") for variant in variants]
    rows = [row for run, status in arms for row in _rows(run, base_pages, stages, status)]
    rows = judge_against_control(rows)
    return {
        "baseline": baseline.name,
        "control": control.name if control else None,
        "variants": [_variant_entry(run, status) for run, status in arms],
        "stages": stages,
        "peak": headline_peak(baseline.metrics),
        "rows": rows,
        "best": best_per_stage(rows, stages),
        "method": METHOD,
        "how_to_add": HOW_TO_ADD,
    }


def read_comparison(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's variants/comparison.json, or None when the run has none."""
    path = Path(run_dir) / COMPARISON_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def comparison_note(comparison: dict[str, Any] | None) -> str | None:
    """The one line shown instead of the comparison when there is nothing to compare."""
    if comparison is None:
        return NO_COMPARISON
    if len(comparison["variants"]) < 2:
        return f"Only the baseline was profiled in this run: {comparison['how_to_add']}."
    if not comparison["stages"]:
        return "No page of the baseline was timed (every page failed): nothing to compare."
    return None


# --- tables for reading ----------------------------------------------------------------------


def switches_text(switches: dict[str, Any]) -> str:
    """Switches as `key: value` pairs, or "run settings" for none."""
    return ", ".join(f"{k}: {v}" for k, v in switches.items()) or "run settings"


def gate_difference(gate: dict[str, Any] | None) -> str:
    """The gate's measured difference in one line (pages identical, logit differences)."""
    if gate is None:
        return "-"
    parts = []
    if gate.get("pages") and gate.get("pages_identical") is not None:
        parts.append(f"{gate.get('pages_identical')} of {gate['pages']} pages identical")
    if gate.get("max_abs_logit_diff") is not None:
        parts.append(f"max absolute logit difference {format_number(gate['max_abs_logit_diff'])}")
    if gate.get("relative_logit_diff") is not None:
        relative = format_number(gate["relative_logit_diff"])
        parts.append(f"relative {relative} (tolerance {format_number(gate.get('tolerance'))})")
    return "; ".join(parts) or gate.get("detail") or "-"


def gate_table(comparison: dict[str, Any]) -> pd.DataFrame:
    """Each variant, its switches, ok and failed records, gate status, measured difference
    and what decided it."""
    return pd.DataFrame(
        [
            {
                "variant": v["name"],
                "switches": switches_text(v["switches"]),
                "records ok / failed": f"{v['records_ok']} / {v['records_error']}",
                "gate": v["status"],
                "measured difference": gate_difference(v["gate"]),
                "decided by": (v["gate"] or {}).get("criterion") or "-",
                "detail": (v["gate"] or {}).get("detail") or "-",
            }
            for v in comparison["variants"]
        ]
    )


def _interval_text(row: dict[str, Any], missing: str | None = "-") -> str | None:
    """A row's 95% interval as "low to high", or `missing` without one."""
    if row["ratio_low"] is None or row["ratio_high"] is None:
        return missing
    return f"{format_number(row['ratio_low'])} to {format_number(row['ratio_high'])}"


def comparison_table(comparison: dict[str, Any]) -> pd.DataFrame:
    """Stage x variant: mean time, ratio to the baseline with its interval, how to read it,
    MFU/MBU (%) and the distance to the roofline at the headline peak."""
    peak = comparison["peak"]
    rows = [
        {
            "stage": DISPLAY_NAMES.get(r["stage"], r["stage"]),
            "variant": r["variant"],
            "mean (ms)": r["ms"],
            "pages": r["pages"],
            "x baseline": r["ratio"],
            "95% interval": _interval_text(r),
            # The stage's A/A control interval (vlmprof.variants.control); none without one.
            "control 95% interval": _interval_text(
                {"ratio_low": r.get("control_low"), "ratio_high": r.get("control_high")}, None
            ),
            "reading": r["verdict"],
            f"MFU {peak} (%)": None if r[f"mfu_{peak}"] is None else 100.0 * r[f"mfu_{peak}"],
            f"MBU {peak} (%)": None if r[f"mbu_{peak}"] is None else 100.0 * r[f"mbu_{peak}"],
            f"x from roofline ({peak})": r[f"roofline_x_{peak}"],
            "bound by": r[f"bound_{peak}"] or "-",
        }
        for stage in comparison["stages"]
        for r in comparison["rows"]
        if r["stage"] == stage
    ]
    table = pd.DataFrame(rows)
    return table.dropna(axis="columns", how="all")


def chart_frame(comparison: dict[str, Any]) -> pd.DataFrame:
    """The rows a variant chart draws: chart stages (display names), every variant, its
    status, ratio with interval and roofline distance at the headline peak."""
    peak = comparison["peak"]
    frame = pd.DataFrame(comparison["rows"])
    frame = frame[frame["stage"].isin(CHART_STAGES)]
    order = {stage: i for i, stage in enumerate(CHART_STAGES)}
    frame = frame.sort_values("stage", key=lambda s: s.map(order), kind="stable")
    return pd.DataFrame(
        {
            "stage": frame["stage"].map(DISPLAY_NAMES),
            "variant": frame["variant"],
            "status": frame["status"],
            "ratio": pd.to_numeric(frame["ratio"], errors="coerce"),
            "ratio_low": pd.to_numeric(frame["ratio_low"], errors="coerce"),
            "ratio_high": pd.to_numeric(frame["ratio_high"], errors="coerce"),
            "roofline_x": pd.to_numeric(frame[f"roofline_x_{peak}"], errors="coerce"),
        }
    ).reset_index(drop=True)


def to_markdown(comparison: dict[str, Any]) -> str:
    """comparison.md: the gate table, the stage table, the best per stage and the method."""
    note = comparison_note(comparison)
    lines = ["# Variants against the baseline", ""]
    if note:
        return "\n".join([*lines, note, ""])
    shown = comparison_table(comparison).map(format_number)
    best = [
        f"- {DISPLAY_NAMES.get(stage, stage)}: {name or 'no gate-passed variant is faster'}"
        for stage, name in comparison["best"].items()
    ]
    method = [f"- {key}: {text}" for key, text in comparison["method"].items()]
    return "\n".join(
        [
            *lines,
            gate_table(comparison).to_markdown(index=False),
            "",
            shown.to_markdown(index=False),
            "",
            "Best measured variant per stage:",
            "",
            *best,
            "",
            "Method:",
            "",
            *method,
            "",
        ]
    )


def write_comparison(
    comparison: dict[str, Any], json_path: str | Path, csv_path: str | Path, md_path: str | Path
) -> None:
    """comparison.json, comparison.csv (one row per variant x stage) and comparison.md."""
    write_json_atomic(json_path, comparison)
    with atomic_open(csv_path) as handle:
        pd.DataFrame(comparison["rows"]).to_csv(handle, index=False)
    write_text_atomic(md_path, to_markdown(comparison))

"""Figures of the report, drawn from the DataFrames of the report's section modules.

Each function returns a matplotlib Figure (not attached to pyplot, so a notebook shows it
exactly once) with a title and units on every axis. Legends carry the names of small
segments and points, so labels never sit on top of each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from vlmprof.metrics.document import Peaks, Summary
from vlmprof.report.timing import (
    GPU_LANE,
    LOAD_LANE,
    PAGE_PARTS,
    PREPROCESS_LANE,
    VISION_REMAINDER,
    WAIT_LANE,
)
from vlmprof.stages import STAGE_LABELS

# One colour per stage (and for the vision remainder, a part of a page without a stage of
# its own), keyed by stage name and shared by every figure.
STAGE_COLOURS: dict[str, str] = {
    "sam": "#4C72B0",
    "clip": "#55A868",
    "projector": "#C44E52",
    "vision": "#937860",
    VISION_REMAINDER: "#8172B2",
    "llm_prefill": "#CCB974",
    "prefill": "#DD8452",
    "decode": "#64B5CD",
}
OTHER_COLOUR = "#999999"
_STAGE_BY_LABEL: dict[str, str] = {text: name for name, text in STAGE_LABELS.items()}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def colour(name: str) -> str:
    """The colour of a stage, by its name or display name (grey for anything else)."""
    return STAGE_COLOURS.get(_STAGE_BY_LABEL.get(name, name), OTHER_COLOUR)


# Segments narrower than this share (%) get no label inside the bar, only in the legend.
_INLINE_LABEL_MIN = 7.0


def _share_bar(ax, shares: pd.Series, values_ms: pd.Series, title: str) -> None:
    """One horizontal 100% bar of `shares` (%), labelled inside where wide enough."""
    left = 0.0
    for name, share in shares.items():
        label = f"{name}: {values_ms[name]:,.2f} ms ({share:.1f}%)"
        ax.barh(0, share, left=left, color=colour(str(name)), edgecolor="white", label=label)
        if share >= _INLINE_LABEL_MIN:
            ax.text(left + share / 2, 0, f"{share:.1f}%", ha="center", va="center", color="white")
        left += share
    ax.set_xlim(0, 100)
    ax.set_yticks([])
    ax.set_xlabel("share of time (%)")
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)


def _stacked_bars(ax, frame: pd.DataFrame, legend: Callable[[str], str] = str) -> np.ndarray:
    """One horizontal bar per row of `frame` at y = 0, 1, ..., its columns (stage names,
    coloured as such, named in the legend by `legend`) stacked left to right; returns the y
    positions for the row labels."""
    y = np.arange(len(frame))
    left = np.zeros(len(frame))
    for stage in frame.columns:
        values = frame[stage].to_numpy(dtype=float)
        ax.barh(y, values, left=left, color=colour(stage), label=legend(stage), edgecolor="white")
        left += values
    return y


def stage_share_figure(run_split: pd.DataFrame, prefill_split: pd.DataFrame) -> Figure:
    """Page level (the host's load and preprocessing, prefill, decode) and prefill level
    (its exclusive parts) shares."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    _share_bar(
        top,
        run_split["share (%)"],
        run_split["mean (ms)"],
        "Page level: image load and preprocess (host), prefill, decode (mean per page)",
    )
    _share_bar(
        bottom,
        prefill_split["share of prefill (%)"],
        prefill_split["mean (ms)"],
        "Prefill level: SAM, CLIP, projector, vision remainder, LLM prefill",
    )
    fig.suptitle("Where a page's time goes", fontsize=13)
    return fig


def page_time_figure(page_split: pd.DataFrame) -> Figure:
    """One bar: the parts of a page's time (%), end to end (`end_to_end_split`)."""
    fig = Figure(figsize=(10, 2.0), layout="constrained")
    ax = fig.subplots()
    _share_bar(ax, page_split["share (%)"], page_split["mean (ms)"], "")
    total = page_split["mean (ms)"].sum()
    fig.suptitle(f"Where the time of one page goes (end to end: {total:,.2f} ms)")
    return fig


def per_image_figure(parts: pd.DataFrame) -> Figure:
    """Stacked bars per page: the exclusive parts of prefill and decode (ms)."""
    columns = [c for c in PAGE_PARTS if f"{c} (ms)" in parts.columns]
    categories = parts["category"] if "category" in parts.columns else None
    labels = [str(i) if categories is None else f"{i} ({categories[i]})" for i in parts.index]
    fig = Figure(figsize=(11, 1.2 + 0.45 * len(parts)), layout="constrained")
    ax = fig.subplots()
    y = _stacked_bars(ax, parts[[f"{c} (ms)" for c in columns]].set_axis(columns, axis=1))
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("mean time per page (ms)")
    ax.set_title("Per page: prefill parts and decode (mean over repeats)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
    return fig


def _histogram(ax, values: pd.Series, stats: Summary, title: str, xlabel: str) -> None:
    ax.hist(values, bins=min(30, max(5, len(values) // 2)), color="#64B5CD", edgecolor="white")
    for key, value, style in (("p50", stats.p50, "-"), ("p90", stats.p90, "--")):
        ax.axvline(value, color="black", linestyle=style, label=f"{key} {value:,.2f} ms")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend(frameon=False, fontsize=9)


def decode_latency_figure(
    ttft: pd.Series, steps: pd.DataFrame, stage_ms: dict[str, Summary]
) -> Figure:
    """Distributions of TTFT (one per record) and of the time of every decode step."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    _histogram(left, ttft, stage_ms["ttft"], "Time to first token", "TTFT (ms)")
    _histogram(
        right,
        steps["step (ms)"],
        stage_ms["decode_per_token"],
        "Time per output token (every decode step)",
        "decode step (ms)",
    )
    fig.suptitle("Decode latency distribution")
    return fig


def utilisation_figure(table: pd.DataFrame, peak_notes: dict[str, str]) -> Figure:
    """MFU and MBU (%) per stage against the datasheet and calibrated peaks.

    `peak_notes` maps "datasheet"/"calibrated" to the reason a peak is missing, shown in
    the legend so an empty bar group explains itself.
    """
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("MFU", "MBU"), strict=True):
        data = table[[f"{kind} datasheet (%)", f"{kind} calibrated (%)"]].dropna(how="all")
        x = np.arange(len(data))
        for offset, (peak, shade) in zip(
            (-0.2, 0.2), (("datasheet", "#8C8C8C"), ("calibrated", "#4C72B0")), strict=True
        ):
            values = data[f"{kind} {peak} (%)"]
            label = peak if values.notna().any() else f"{peak}: {peak_notes.get(peak, 'none')}"
            ax.bar(x + offset, values.fillna(0.0), width=0.4, color=shade, label=label)
        ax.set_xticks(x, data.index, rotation=15)
        ax.set_ylabel("% of peak")
        what = "compute (FLOP/s)" if kind == "MFU" else "bandwidth (necessary bytes/s)"
        ax.set_title(f"{kind}: share of peak {what}")
        ax.legend(frameon=False, fontsize=9)
    fig.suptitle("Utilisation per stage")
    return fig


def roofline_figure(points: pd.DataFrame, peaks: Peaks) -> Figure:
    """Stages at (arithmetic intensity, achieved GFLOP/s) under the roofs of each peak."""
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    ax = fig.subplots()
    intensity = points["intensity (FLOP/byte)"]
    span = np.logspace(np.log10(max(intensity.min() / 4, 1e-3)), np.log10(intensity.max() * 4), 200)
    reference = "configured" if peaks.override is not None else "datasheet"
    roofs = ((reference, peaks.reference, "--"), ("calibrated", peaks.calibrated, "-"))
    for name, peak, style in roofs:
        if peak.tflops and peak.tbps:
            roof = np.minimum(peak.tflops * 1e3, span * peak.tbps * 1e3)
            ax.plot(
                span,
                roof,
                style,
                color="black",
                label=f"{name} roof: {peak.tflops:.4g} TFLOP/s, {peak.tbps:.4g} TB/s",
            )
    for (stage, row), marker in zip(points.iterrows(), _MARKERS, strict=False):
        ax.scatter(
            row["intensity (FLOP/byte)"],
            row["achieved (GFLOP/s)"],
            s=70,
            marker=marker,
            color=colour(str(stage)),
            edgecolor="black",
            zorder=3,
            label=f"{stage}: {row['achieved (GFLOP/s)']:,.3g} GFLOP/s",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    tops = [peak.tflops * 1e3 for _, peak, _ in roofs if peak.tflops]
    lows = [points["achieved (GFLOP/s)"].min()] + [
        span[0] * peak.tbps * 1e3 for _, peak, _ in roofs if peak.tbps
    ]
    ax.set_ylim(min(lows) / 2, max([*tops, points["achieved (GFLOP/s)"].max()]) * 2)
    ax.set_xlabel("arithmetic intensity (FLOP per necessary byte)")
    ax.set_ylabel("achieved (GFLOP/s)")
    ax.set_title("Roofline: each stage against the peaks")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
    return fig


def operator_category_figure(categories: pd.DataFrame) -> Figure:
    """Operator self time per category (ms), split by the stage it ran in."""
    stage_columns = [c for c in categories.columns if c.endswith(" (ms)") and c != "self (ms)"]
    fig = Figure(figsize=(11, 1.5 + 0.42 * len(categories)), layout="constrained")
    ax = fig.subplots()
    by_stage = categories[stage_columns].rename(columns=lambda c: c.removesuffix(" (ms)"))
    y = _stacked_bars(ax, by_stage.loc[:, by_stage.sum() != 0])
    ax.set_yticks(y, categories.index)
    ax.invert_yaxis()
    ax.set_xlabel("operator self time in the profiler pass (ms)")
    ax.set_title("Operator categories by stage")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
    return fig


# Variant bars: the baseline grey, then one colour per variant in config order.
VARIANT_COLOURS: tuple[str, ...] = (
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B2",
    "#937860",
    "#DA8BC3",
    "#CCB974",
)
BASELINE_COLOUR = "#8C8C8C"


def _variant_colour(status: pd.Series, variant: str) -> str:
    """Grey for the baseline, else the variant's colour by its place in the comparison."""
    if status[variant] == "baseline":
        return BASELINE_COLOUR
    others = [v for v in status.index if status[v] != "baseline"]
    return VARIANT_COLOURS[others.index(variant) % len(VARIANT_COLOURS)]


def variant_figure(chart: pd.DataFrame, peak: str) -> Figure:
    """Per stage, each variant's speedup over the baseline (95% interval as whiskers) and
    every variant's distance to the stage's roofline bound (x, log scale).

    `chart` is `vlmprof.report.variants.chart_frame`. Sweep points (status
    not_applicable) are hatched and named a different workload; variants that failed their
    gate are drawn in neither panel, only named in the legend.
    """
    stages = list(dict.fromkeys(chart["stage"]))
    status = chart.groupby("variant", sort=False)["status"].first()
    drawn = [v for v in status.index if status[v] != "failed"]
    fig = Figure(figsize=(12, 1.8 + 0.32 * len(stages) * len(drawn)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(stages))
    height = 0.8 / max(len(drawn), 1)
    for index, variant in enumerate(drawn):
        rows = chart[chart["variant"] == variant].set_index("stage").reindex(stages)
        at = y + (index - (len(drawn) - 1) / 2) * height
        sweep = status[variant] == "not_applicable"
        style = {
            "height": height,
            "color": _variant_colour(status, variant),
            "hatch": "//" if sweep else None,
            "edgecolor": "white",
            "label": f"{variant} (different workload)" if sweep else variant,
        }
        if status[variant] != "baseline":
            ratio, low, high = (
                rows[c].to_numpy(float) for c in ("ratio", "ratio_low", "ratio_high")
            )
            whiskers = np.nan_to_num([ratio - low, high - ratio]).clip(min=0)
            left.barh(at, np.nan_to_num(ratio), xerr=whiskers, capsize=3, **style)
        right.barh(at, rows["roofline_x"].fillna(0.0), **style)
    left.axvline(1.0, color="black", linewidth=1, label="baseline time (1x)")
    left.set_yticks(y, stages)
    left.invert_yaxis()
    left.set_xlabel("speedup: baseline time / variant time (x)")
    left.set_title("Speedup over the baseline (95% interval)")
    if chart["roofline_x"].notna().any():
        right.set_xscale("log")
        right.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        right.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        right.xaxis.set_minor_formatter(NullFormatter())
        right.axvline(1.0, color="black", linestyle="--", linewidth=1, label="at the bound")
    else:
        right.text(0.5, 0.5, "no peak to divide by", ha="center", transform=right.transAxes)
    right.set_xlabel(f"time over the roofline bound at the {peak} peak (x)")
    right.set_title("Distance to the hardware limit")
    legend: dict[str, object] = {}
    for ax in (left, right):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    for variant in status.index.difference(drawn, sort=False):
        legend[f"{variant}: failed gate, not shown"] = Patch(facecolor="white", edgecolor="black")
    right.legend(
        list(legend.values()),
        list(legend),
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
        fontsize=9,
    )
    fig.suptitle("Variants per stage")
    return fig


def throughput_latency_figure(settings: pd.DataFrame) -> Figure:
    """Each setting's page latency at p90 (x) against its pages per GPU-day end to end (y),
    one point per setting and batch size: the trade a stakeholder chooses on (up and left is
    better).

    `settings` is `vlmprof.report.variants.settings_table` (rows without both figures are
    left out); points are coloured by gate status as in `variant_figure`."""
    figures = ["page latency p90 (ms)", "pages per GPU-day"]
    drawn = settings.reindex(columns=["setting", "gate", "pages per batch", *figures]).dropna(
        subset=figures
    )
    status = drawn.set_index("setting")["gate"]
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for _, row in drawn.iterrows():
        point = (row["page latency p90 (ms)"] / 1000.0, row["pages per GPU-day"])
        ax.scatter(*point, color=_variant_colour(status, row["setting"]), s=40)
        batch = 1 if pd.isna(row["pages per batch"]) else row["pages per batch"]
        label = f"{row['setting']} (batch {batch:g})"
        ax.annotate(label, point, textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel(
        "page latency, p90 across pages: its load and preprocessing, its batch's wait and run (s)"
    )
    ax.set_ylabel("pages per GPU-day, end to end")
    ax.set_title("Throughput against latency, one point per setting")
    ax.grid(alpha=0.3)
    return fig


# Each host-side lane's colour; the GPU lane is coloured by stage.
LANE_COLOURS = {LOAD_LANE: "#8172B3", PREPROCESS_LANE: "#CCB974", WAIT_LANE: "#C44E52"}


def _draw_timeline(ax: Any, timeline: pd.DataFrame) -> None:
    """A batch timeline's spans as bars, one lane a row, on `ax`."""
    lanes = list(dict.fromkeys(timeline["lane"]))
    for _, row in timeline.iterrows():
        gpu = row["lane"] == GPU_LANE
        ax.barh(
            lanes.index(row["lane"]),
            row["end (ms)"] - row["start (ms)"],
            left=row["start (ms)"],
            height=0.6,
            color=colour(row["span"]) if gpu else LANE_COLOURS.get(row["lane"], OTHER_COLOUR),
            edgecolor="white",
            linewidth=0.5,
        )
        if gpu:
            ax.text(row["start (ms)"], lanes.index(row["lane"]), f" {row['span']}", va="center")
    ax.set_yticks(range(len(lanes)), lanes)
    ax.invert_yaxis()
    ax.set_xlabel("host clock (ms from the batch's first span)")


def batch_timeline_figure(timeline: pd.DataFrame) -> Figure:
    """`vlmprof.report.timing.batch_timeline` as lanes on one time axis: where the host's
    loading and preprocessing ran against the GPU's prefill and decode of one batch."""
    lanes = timeline["lane"].nunique()
    fig = Figure(figsize=(10, 1.2 + 0.5 * lanes), layout="constrained")
    ax = fig.subplots()
    _draw_timeline(ax, timeline)
    ax.set_title("One batch: the host's side and the GPU's side")
    return fig


def arm_timelines_figure(timelines: dict[str, pd.DataFrame], titles: dict[str, str]) -> Figure:
    """One batch timeline per arm (`timelines`, by name, each `batch_timeline`), one panel
    each, titled by `titles` (the arm's batch size and binding side, say): load,
    preprocessing, the wait and the GPU of a steady batch, arm under arm."""
    drawn = {name: frame for name, frame in timelines.items() if len(frame)}
    if not drawn:
        raise ValueError("no arm kept a batch's spans: nothing to draw")
    fig = Figure(figsize=(10, 0.5 + 2.6 * len(drawn)), layout="constrained")
    panels = fig.subplots(len(drawn), 1, squeeze=False)[:, 0]
    for ax, (name, timeline) in zip(panels, drawn.items(), strict=True):
        _draw_timeline(ax, timeline)
        ax.set_title(titles.get(name, name), loc="left", fontsize=10)
    fig.suptitle("A steady batch of each setting: the host's side and the GPU's side")
    return fig


def models_figure(parts: pd.DataFrame, output_tokens: int) -> Figure:
    """Per model and decode path (released, best), the GPU time of one page of
    `output_tokens` tokens split into its parts: where each model spends a page. `parts` is
    `vlmprof.report.models.page_parts`."""
    seconds = parts.iloc[::-1]
    fig = Figure(figsize=(8, 1.2 + 0.5 * len(seconds)), layout="constrained")
    ax = fig.subplots()
    y = _stacked_bars(ax, seconds, lambda stage: STAGE_LABELS.get(stage, stage))
    ax.set_yticks(y, seconds.index)
    ax.set_xlabel(f"GPU time of a page of {output_tokens:,} output tokens (s)")
    ax.set_title("Where each model spends a page", loc="left")
    ax.legend(loc="lower right", frameon=False, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return fig

"""The variants section: the comparison of `vlmprof.variants.comparison` for reading, as
tables, the rows a chart draws and comparison.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from vlmprof.metrics.document import Pipeline
from vlmprof.report.findings import BASELINE_ONLY, BASELINE_UNTIMED, NO_COMPARISON, comparison_gap
from vlmprof.report.formatting import as_percent, display_name, format_number, whole
from vlmprof.report.timing import binding_sentence
from vlmprof.typed_json import read_as
from vlmprof.variants.comparison import PAGE, ROOFLINE_STAGES, fastest_row

# The stages a variant chart draws: those with a roofline distance, then the whole page.
CHART_STAGES: tuple[str, ...] = (*ROOFLINE_STAGES, PAGE)
PAGE_TITLE = "whole page (prefill + decode)"
NO_COMPARISON_NOTE = "No variant comparison in this run."


def stage_title(stage: str) -> str:
    """A comparison stage's display name, the page's included."""
    return PAGE_TITLE if stage == PAGE else display_name(stage)


def gap_note(gap: str, how_to_add: str) -> str:
    """The one line shown instead of a comparison with nothing to compare (`comparison_gap`)."""
    return {
        NO_COMPARISON: NO_COMPARISON_NOTE,
        BASELINE_ONLY: f"Only the baseline was profiled in this run: {how_to_add}.",
        BASELINE_UNTIMED: "No page of the baseline was timed (every page failed): nothing to "
        "compare.",
    }[gap]


def comparison_note(comparison: dict[str, Any] | None) -> str | None:
    """The one line shown instead of the comparison when there is nothing to compare."""
    gap = comparison_gap(comparison)
    return None if gap is None else gap_note(gap, (comparison or {}).get("how_to_add", ""))


def switches_text(switches: dict[str, Any]) -> str:
    """Switches as `key: value` pairs, or "run settings" for none."""
    return ", ".join(f"{k}: {v}" for k, v in switches.items()) or "run settings"


def gate_difference(gate: dict[str, Any] | None) -> str:
    """The gate's measured margin in one line: the largest error ratios against their
    limits, and on how many pages the greedy picks equal the baseline's."""
    if gate is None:
        return "-"
    factors = gate.get("factors") or {}
    parts = []
    if gate.get("code_path_ratio") is not None:
        parts.append(
            f"largest error {gate['code_path_ratio']:.3g}x the baseline's "
            f"(limit {factors.get('code_path'):g}x)"
        )
    if gate.get("precision_ratio") is not None:
        parts.append(
            f"RMS error at the run's precision {gate['precision_ratio']:.3g}x "
            f"(limit {factors.get('precision'):g}x)"
        )
    if gate.get("pages"):
        same = gate.get("pages_same_picks")
        parts.append(f"same greedy picks on {same} of {gate['pages']} pages")
    return "; ".join(parts) or gate.get("detail") or "-"


def gate_meaning(gated: Sequence[dict[str, Any]]) -> str | None:
    """What "passed" means in this run, in one sentence, with the closest call measured
    among the `gated` verdicts (`findings.gated`; None when no variant was gated)."""
    if not gated:
        return None
    passed = [gate for gate in gated if gate["status"] == "passed"]
    sentence = f'"Passed" means: {gated[0]["criterion"]}.'
    if passed:
        closest = max(passed, key=lambda gate: gate["code_path_ratio"])
        sentence += (
            f" The closest call among the variants that passed: `{closest['variant']}`, "
            f"{gate_difference(closest)}."
        )
    return sentence


def payback_text(variant: dict[str, Any]) -> str:
    """After how many pages a gate-passed variant's extra warm-up is paid back: "-" where
    it does not apply, "never" where it saves nothing per page."""
    if variant.get("status") != "passed" or variant.get("extra_warmup_ms") is None:
        return "-"
    pages = variant.get("payback_pages")
    return "never" if pages is None else f"{math.ceil(pages):,}"


# Statuses as a reader sees them, where the key is no plain word.
STATUS_TEXT = {"did_not_fit": "did not fit", "not_applicable": "not applicable"}


def status_text(status: str) -> str:
    """An arm's status in words: a batch out of memory "did not fit", not a failure."""
    return STATUS_TEXT.get(status, status)


def _gib(value: float | None) -> float | None:
    return None if value is None else value / 2**30


def gate_table(comparison: dict[str, Any]) -> pd.DataFrame:
    """Each variant, its switches, ok and failed records, gate status, measured margin
    and why it failed, its shards' warm-up (compilation and graph capture included) and
    after how many pages the extra warm-up pays back."""
    return pd.DataFrame(
        [
            {
                "variant": v["name"],
                "switches": switches_text(v["switches"]),
                "records ok / failed": f"{v['records_ok']} / {v['records_error']}",
                "gate": status_text(v["status"]),
                "measured margin": gate_difference(v["gate"]),
                "detail": (v["gate"] or {}).get("detail") or "-",
                "warm-up (s)": None if v.get("warmup_ms") is None else v["warmup_ms"] / 1000.0,
                "pays back after (pages)": payback_text(v),
            }
            for v in comparison["variants"]
        ]
    )


def _interval_text(row: dict[str, Any]) -> str:
    """A row's 95% interval as "low to high", or "-" without one."""
    if row["ratio_low"] is None or row["ratio_high"] is None:
        return "-"
    return f"{format_number(row['ratio_low'])} to {format_number(row['ratio_high'])}"


def comparison_table(comparison: dict[str, Any]) -> pd.DataFrame:
    """Stage x variant: mean time, ratio to the baseline with its interval and noise floor
    (the smallest change the run could have called), how to read it, MFU/MBU (%) and the
    distance to the roofline at the headline peak."""
    peak = comparison["peak"]
    rows = [
        {
            "stage": stage_title(r["stage"]),
            "variant": r["variant"],
            "mean (ms)": r["ms"],
            "pages": r["pages"],
            "x baseline": r["ratio"],
            "95% interval": _interval_text(r),
            "noise floor (%)": None if r["noise_floor"] is None else 100.0 * r["noise_floor"],
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


def bound_table(comparison: dict[str, Any]) -> pd.DataFrame:
    """Per chart stage: the variant it runs fastest on (gate passed and measurably faster;
    else the baseline), its mean time and how many times it is above its roofline bound at
    the headline peak, and which bound."""
    peak = comparison["peak"]
    table = []
    for stage in CHART_STAGES:
        row = fastest_row(comparison, stage)
        if row is None:
            continue
        table.append(
            {
                "stage": stage_title(stage),
                "fastest (gate passed)": row["variant"],
                "mean (ms)": row["ms"],
                f"x from roofline ({peak})": row[f"roofline_x_{peak}"],
                "bound by": row[f"bound_{peak}"] or "-",
            }
        )
    return pd.DataFrame(table)


def settings_table(comparison: dict[str, Any]) -> pd.DataFrame:
    """Per setting (the baseline and each variant but the control): its gate status, pages
    per batch, workers and measured rates (end to end first, the GPU side and decode only
    beside), the end-to-end rate's share of the GPU side's and the side that binds, its
    largest batch's KV cache (computed) and peak memory (measured), the pages that did not
    fit, and what a page at its real length costs end to end: its latency at p90 across
    pages, pages per GPU-day and money per 1,000 pages where priced."""
    rows = [
        {
            "setting": s["name"],
            "gate": status_text(s["status"]),
            "pages per batch": whole(s.get("batch_size")),
            "workers": s.get("workers"),
            "output tokens/s end to end (timed)": s.get("output_tokens_per_s_end_to_end"),
            "pages/s end to end (timed)": s.get("pages_per_s_end_to_end"),
            "output tokens/s GPU side (timed)": s.get("output_tokens_per_s_gpu_side"),
            "decode tokens/s (timed)": s.get("decode_tokens_per_s"),
            "page latency p90 (ms)": s.get("latency_p90_ms"),
            "end to end / GPU side (%)": as_percent(s.get("end_to_end_share")),
            "bound by": s.get("binding"),
            "KV cache (GiB)": _gib(s.get("kv_cache_bytes")),
            "peak memory (GiB)": _gib(s.get("peak_bytes")),
            "pages that did not fit": s.get("pages_did_not_fit"),
            "pages per GPU-day": whole(s["pages_per_gpu_day"]),
            "cost per 1,000 pages": s["cost_per_1000_pages"],
        }
        for s in comparison.get("settings", [])
    ]
    return pd.DataFrame(rows).dropna(axis="columns", how="all")


def did_not_fit_sentence(named: str, setting: dict[str, Any] | None) -> str:
    """A setting whose batches ran out of the device's memory: a finding of its batch size,
    with the pages that did not fit and the KV cache their batch needed, where known."""
    text = f"{named} did not fit in the device's memory"
    if setting and setting.get("pages_did_not_fit"):
        text += f": {setting['pages_did_not_fit']} of its pages ran out of memory"
        if setting.get("kv_cache_bytes_did_not_fit") is not None:
            text += (
                f" (the KV cache of their largest batch alone: "
                f"{setting['kv_cache_bytes_did_not_fit'] / 2**30:,.2f} GiB)"
            )
    return text + "; its times, where any batch ran, are not counted as a result."


def _pipeline(setting: dict[str, Any]) -> Pipeline | None:
    """A setting's pipeline section as metrics.json holds it (None in older comparisons)."""
    section = setting.get("pipeline")
    return None if section is None else read_as(Pipeline, section, f"{setting['name']} pipeline")


def binding_sentences(comparison: dict[str, Any]) -> list[str]:
    """Per setting, which side binds it, host or GPU, in a sentence led by its name, batch
    size and workers (`timing.binding_sentence`); a setting that did not fit says so."""
    sentences = []
    for setting in comparison.get("settings", []):
        workers = setting.get("workers") or 0
        shape = f"batch {setting['batch_size']:g}, {workers} workers"
        if setting["status"] == "did_not_fit":
            sentences.append(did_not_fit_sentence(f"`{setting['name']}` ({shape})", setting))
        else:
            text = binding_sentence(_pipeline(setting))
            sentences.append(f"`{setting['name']}` ({shape}): {text}")
    return sentences


def timeline_titles(comparison: dict[str, Any] | None) -> dict[str, str]:
    """Each setting's panel title in the batch timelines: name, batch size, workers and the
    side that binds it."""
    titles = {}
    for setting in (comparison or {}).get("settings", []):
        bound = f", {setting['binding']}-bound" if setting.get("binding") else ""
        titles[setting["name"]] = (
            f"{setting['name']}: batch of {setting['batch_size']:g}, "
            f"{setting.get('workers') or 0} workers{bound}"
        )
    return titles


def slo_sentence(comparison: dict[str, Any]) -> str | None:
    """Which setting is cheapest within the run's latency bound, or why none is; None when
    the run sets no bound."""
    pick = comparison.get("cheapest_within_slo")
    if not pick or comparison.get("latency_slo_ms") is None:
        return None
    bound = f"{format_number(comparison['latency_slo_ms'])} ms"
    if pick["name"] is None:
        return f"Within a page latency of {bound} (p90): {pick['reason']}."
    cost = pick["cost_per_1000_pages"]
    price = "" if cost is None else f", {format_number(cost)} per 1,000 pages"
    return (
        f"Within a page latency of {bound} (p90), the cheapest setting is `{pick['name']}` "
        f"(by {pick['by']}; {pick['candidates']} of the settings qualify): "
        f"{format_number(pick['latency_p90_ms'])} ms a page at p90, "
        f"{format_number(round(pick['pages_per_gpu_day']))} pages per GPU-day{price}."
    )


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
            "stage": frame["stage"].map(stage_title),
            "variant": frame["variant"],
            "status": frame["status"],
            "ratio": pd.to_numeric(frame["ratio"], errors="coerce"),
            "ratio_low": pd.to_numeric(frame["ratio_low"], errors="coerce"),
            "ratio_high": pd.to_numeric(frame["ratio_high"], errors="coerce"),
            "roofline_x": pd.to_numeric(frame[f"roofline_x_{peak}"], errors="coerce"),
        }
    ).reset_index(drop=True)


def to_markdown(comparison: dict[str, Any] | None) -> str:
    """comparison.md: the gate table, the stage table, the best per stage and the method."""
    note = comparison_note(comparison)
    lines = ["# Variants against the baseline", ""]
    if note:
        return "\n".join([*lines, note, ""])
    shown = comparison_table(comparison).map(format_number)
    settings = settings_table(comparison).map(format_number)
    best = [
        f"- {stage_title(stage)}: {name or 'no gate-passed variant is faster'}"
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
            "Each setting's throughput, memory and cost of a page:",
            "",
            settings.to_markdown(index=False),
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

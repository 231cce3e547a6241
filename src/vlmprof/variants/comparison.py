"""Variants against the baseline, stage by stage: time, ratio, utilisation, roofline distance.

Every variant is a profiled run of the baseline's pages (its metrics.json and, beside it,
tables/per_image.csv as the aggregate step writes them, each page with its shard) with the
correctness gate's verdict. Per stage the comparison holds the variant's mean time over the
pages both runs measured, the ratio reference time / variant time (2.0: twice as fast) with
its 95% interval, noise floor and verdict from the one comparison engine
(`vlmprof.variants.paired`), and MFU, MBU and how many times the stage's time is above its
roofline bound as metrics.json holds them. The reference is the baseline averaged page by
page with the A/A control (`vlmprof.variants.control`) when the run has one; the control
also measures the drift between runs that every interval holds. Verdicts are corrected for
how many are made (Holm, in two families: the whole page across the variants, and every
other stage x variant). A variant that failed its gate keeps its times but gets no ratio; a
sweep point (gate not_applicable: other preset, mode or crops) gets a ratio labelled as a
different workload; only gate-passed variants are judged, and only they can be a stage's
best. The comparison is data (comparison.json); `vlmprof.report.variants` presents it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlmprof.atomic import atomic_open, write_json_atomic
from vlmprof.metrics.document import (
    Cost,
    MbuStage,
    Memory,
    MetricsDocument,
    MfuStage,
    PageBound,
)
from vlmprof.metrics.roofline import PEAK_COLUMNS
from vlmprof.stages import HOST_STAGES, STAGE_NAMES
from vlmprof.typed_json import to_plain
from vlmprof.variants import paired
from vlmprof.variants.control import CONTROL, CONTROL_VERDICT
from vlmprof.variants.paired import Drift, PairedRatio
from vlmprof.variants.switches import BASELINE

GATE_STATUSES: tuple[str, ...] = ("passed", "failed", "not_applicable", "did_not_fit")
# An arm some of whose batches ran out of the device's memory: a finding of its batch size.
DID_NOT_FIT = "did_not_fit"
GATE_KEYS: tuple[str, ...] = ("variant", "status", "criterion", "detail")
# A page's prefill + decode, the stage MFU calls "model".
PAGE = "model"
# Every stage a switch can change (host-only stages run before the model), then the page.
STAGE_ORDER: tuple[str, ...] = (*(s for s in STAGE_NAMES if s not in HOST_STAGES), PAGE)
# Stages whose distance to the roofline the comparison reports, besides the page.
ROOFLINE_STAGES: tuple[str, ...] = ("vision", "llm_prefill", "prefill", "decode")
# Holm's families: the whole page across the variants, and every other stage x variant.
FAMILIES: dict[bool, str] = {True: "page", False: "stages"}
HOW_TO_ADD = (
    "to compare optimisations, name them under `variants:` in the config, each with the "
    "switches it sets over the baseline (e.g. `grouped: {experts: grouped}`), and rerun"
)
METHOD = {
    **paired.METHOD,
    "verdict": "faster or slower when the two-sided p of E / sqrt(V) is at most "
    f"{paired.ALPHA:.0%} after Holm's correction within its family (the whole page, prefill + "
    "decode, across the gate-passed variants; every other stage x variant apart), else within "
    f"noise; {paired.TOO_FEW_PAGES!r} below {paired.MIN_PAGES} pages, {paired.NOT_JUDGED!r} "
    "without an A/A control (variant_control.enabled: false); only a variant whose gate passed "
    "is judged, and the best of a stage is the faster one with the largest ratio",
    "control": "the A/A control is the baseline profiled again after every other arm, shard "
    "by shard; its row's ratio is baseline time / control time, the drift between runs",
    "payback": "pages after which a gate-passed variant's extra warm-up over the baseline's "
    "(compilation and graph capture, each shard's warm-up rounds timed) is paid back by its "
    "whole-page saving",
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
    metrics: MetricsDocument
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
        metrics=MetricsDocument.read(metrics_path),
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


def page_shards(per_image: pd.DataFrame) -> pd.Series | None:
    """The shard each page ran in (tables/per_image.csv's `shard`); None for tables written
    before it was kept, whose pages then count as one shard."""
    if "shard" not in per_image.columns:
        return None
    return pd.to_numeric(per_image["shard"], errors="coerce").fillna(-1).astype(int)


@dataclass(frozen=True)
class Reference:
    """What one stage's arms are measured against: each page's reference time (the
    baseline's, averaged with the control's where the run has one), the baseline's own,
    each page's shard, and the drift between runs the control measured (None without)."""

    times: pd.Series
    baseline: pd.Series
    shard: pd.Series | None
    drift: Drift | None


def stage_reference(
    baseline: pd.Series, control: pd.Series | None, shard: pd.Series | None
) -> Reference:
    """One stage's reference from the baseline's and the control's page means."""
    if control is None:
        return Reference(baseline, baseline, shard, None)
    base, again = baseline.align(control, join="inner")
    drift = paired.shard_drift(base.to_numpy(float), again.to_numpy(float), _shards(shard, base))
    if drift is None:
        return Reference(baseline, baseline, shard, None)
    times = pd.Series(paired.reference_times(base.to_numpy(float), again.to_numpy(float)))
    return Reference(times.set_axis(base.index), baseline, shard, drift)


def _shards(shard: pd.Series | None, pages: pd.Series) -> np.ndarray | None:
    """The shard of each of `pages`, in their order (None where the pages do not say)."""
    return None if shard is None else shard.reindex(pages.index).fillna(-1).to_numpy(int)


def roofline_distance(metrics: MetricsDocument) -> dict[str, dict[str, PageBound]]:
    """Per stage of `ROOFLINE_STAGES` and the page, per peak column with a bound: the
    roofline entry aggregation wrote into metrics.json (distance, bound, bytes counted)."""
    if metrics.roofline is None:
        return {}
    entries = {s: metrics.roofline.per_stage.get(s) for s in ROOFLINE_STAGES}
    entries[PAGE] = metrics.roofline.model_level
    bounds = {
        stage: {column: entry.at(column) for column in PEAK_COLUMNS}
        for stage, entry in entries.items()
        if entry is not None
    }
    return {
        stage: {column: found for column, found in by_peak.items() if found is not None}
        for stage, by_peak in bounds.items()
    }


def _utilisation(metrics: MetricsDocument, stage: str) -> dict[str, float | None]:
    """MFU and MBU of a stage against both peaks, as metrics.json holds them."""
    compute = metrics.mfu.model_level if stage == PAGE else metrics.mfu.per_stage.get(stage)
    memory = metrics.mbu.per_stage.get(stage)
    entries: tuple[tuple[str, MfuStage | MbuStage | None], ...] = (
        ("mfu", compute),
        ("mbu", memory),
    )
    return {
        f"{kind}_{column}": None if entry is None else entry.at(column)
        for kind, entry in entries
        for column in PEAK_COLUMNS
    }


@dataclass(frozen=True)
class _Measured:
    """One arm's stage against its reference: mean times over the pages both measured (the
    reference's as `baseline_ms`) and the engine's paired ratio."""

    run: VariantRun
    status: str
    stage: str
    ms: float | None
    baseline_ms: float | None
    pair: PairedRatio


def _measure(
    run: VariantRun, status: str, stage: str, reference: Reference, mine: pd.Series | None
) -> _Measured:
    """An arm's stage (`mine`: its page means) against the reference: a gate-passed variant
    or a sweep point through the engine, the baseline's own ratio without an interval (it is
    half the reference), the control against the baseline (the drift), a failed variant
    without a ratio."""
    mine = pd.Series(dtype=float) if mine is None else mine
    against = reference.baseline if status == CONTROL else reference.times
    base, mine = against.align(mine, join="inner")
    ms = float(mine.mean()) if len(mine) else None
    base_ms = float(base.mean()) if len(base) else None
    pages = len(mine)
    if status in ("passed", "not_applicable"):
        shard = _shards(reference.shard, base)
        pair = paired.paired_ratio(
            base.to_numpy(float), mine.to_numpy(float), shard, reference.drift
        )
    elif status in ("failed", DID_NOT_FIT) or not pages or not mine.sum() > 0:
        pair = PairedRatio(pages, None)
    else:
        shards = 0 if reference.drift is None else reference.drift.shards
        pair = PairedRatio(pages, float(base.sum() / mine.sum()), drift_shards=shards)
    return _Measured(run, status, stage, ms, base_ms, pair)


def _verdict(measured: _Measured, p_adjusted: float | None) -> str:
    """How to read a row's ratio given the arm's gate status and the engine's test."""
    fixed = {
        BASELINE: "baseline",
        "failed": "failed gate: not a speedup",
        "not_applicable": "different workload",
        DID_NOT_FIT: "did not fit: out of memory",
        CONTROL: CONTROL_VERDICT,
    }
    # An arm that did not fit says so whether or not any of its batches ran.
    if measured.status != DID_NOT_FIT and not measured.pair.pages:
        return "not measured"
    if measured.status in fixed:
        return fixed[measured.status]
    return paired.verdict(measured.pair, p_adjusted)


def _judged_rows(measured: list[_Measured]) -> list[dict[str, Any]]:
    """One row per arm x stage, verdicts taken on p-values Holm-adjusted per family; only
    gate-passed variants are tested."""
    families = [FAMILIES[m.stage == PAGE] for m in measured]
    tested = [m.pair.p if m.status == "passed" else None for m in measured]
    adjusted = paired.holm_by_family(families, tested)
    return [
        _row(m, family if p is not None else None, p, adjusted_p)
        for m, family, p, adjusted_p in zip(measured, families, tested, adjusted, strict=True)
    ]


def _row(
    measured: _Measured, family: str | None, p: float | None, p_adjusted: float | None
) -> dict[str, Any]:
    """A comparison row: times, the paired ratio and its test, utilisation and roofline."""
    run, stage, pair = measured.run, measured.stage, measured.pair
    roof = roofline_distance(run.metrics).get(stage, {})
    return {
        "variant": run.name,
        "status": measured.status,
        "stage": stage,
        "ms": measured.ms,
        "baseline_ms": measured.baseline_ms,
        "pages": pair.pages,
        "ratio": pair.ratio,
        "ratio_low": pair.low,
        "ratio_high": pair.high,
        "noise_floor": pair.noise_floor,
        "df": pair.df,
        "drift_shards": pair.drift_shards,
        "p": p,
        "p_adjusted": p_adjusted,
        "family": family,
        "verdict": _verdict(measured, p_adjusted),
        **_utilisation(run.metrics, stage),
        **{f"roofline_x_{c}": roof[c].distance if c in roof else None for c in PEAK_COLUMNS},
        **{f"bound_{c}": roof[c].bound if c in roof else None for c in PEAK_COLUMNS},
        "bytes_counted": next((bound.bytes_counted for bound in roof.values()), None),
    }


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


def fastest_row(comparison: dict[str, Any], stage: str) -> dict[str, Any] | None:
    """The comparison row of `stage` on its best gate-passed variant, else the baseline's
    (None where that arm has no row for the stage)."""
    runner = comparison.get("best", {}).get(stage) or comparison["baseline"]
    return next(
        (r for r in comparison["rows"] if r["variant"] == runner and r["stage"] == stage), None
    )


def payback_pages(extra_warmup_ms: float | None, saving_ms: float | None) -> float | None:
    """Pages after which a variant's extra warm-up (compilation, graph capture) is paid
    back by what it saves per page: 0 when it warms up no slower than the baseline, None
    when it saves nothing per page or either figure is unknown."""
    if extra_warmup_ms is None or saving_ms is None or saving_ms <= 0:
        return None
    return max(extra_warmup_ms, 0.0) / saving_ms


def _warmup_ms(run: VariantRun) -> float | None:
    """The mean warm-up of the run's shards (ms), None where no record carries one."""
    warmup = run.metrics.aggregates.warmup_ms
    return None if warmup is None else warmup.mean


def _with_payback(
    entry: dict[str, Any], baseline_warmup: float | None, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """A gate-passed variant's entry with its extra warm-up over the baseline's and the
    pages after which its per-page saving pays that back."""
    if entry["status"] != "passed":
        return entry
    page = next((r for r in rows if r["variant"] == entry["name"] and r["stage"] == PAGE), None)
    extra = None
    if entry["warmup_ms"] is not None and baseline_warmup is not None:
        extra = entry["warmup_ms"] - baseline_warmup
    saving = None if page is None or page["ms"] is None else page["baseline_ms"] - page["ms"]
    return entry | {"extra_warmup_ms": extra, "payback_pages": payback_pages(extra, saving)}


def _variant_entry(run: VariantRun, status: str) -> dict[str, Any]:
    """What the comparison records of an arm besides its stage rows."""
    return {
        "name": run.name,
        "status": status,
        "switches": run.switches,
        "gate": run.gate,
        "run_name": run.metrics.run_name,
        "config_hash": run.metrics.config_hash,
        "records_ok": run.metrics.counts.ok,
        "records_error": run.metrics.counts.error,
        "warmup_ms": _warmup_ms(run),
    }


def _setting(run: VariantRun, status: str) -> dict[str, Any]:
    """One arm's cost of a page at its real length (its metrics.json `cost` section: pages per
    GPU-day end to end, each page's latency at p90) and its measured rates (output tokens/s
    and pages/s end to end and on the GPU side, decode tokens/s)."""
    cost = run.metrics.cost or Cost()
    aggregates = run.metrics.aggregates
    money = [cost.gpu_cost_per_1000_pages, cost.energy_cost_per_1000_pages]
    priced = [value for value in money if value is not None]
    pipeline, memory = run.metrics.pipeline, run.metrics.memory
    return {
        "name": run.name,
        "status": status,
        # The batch size the arm ran with (one that did not fit has no timed batch).
        "batch_size": run.metrics.config.get("resolved", {}).get(
            "batch_size", 1 if cost.batch_size is None else cost.batch_size
        ),
        "output_tokens_per_s_end_to_end": aggregates.output_tokens_per_s_end_to_end,
        "pages_per_s_end_to_end": aggregates.pages_per_s_end_to_end,
        "output_tokens_per_s_gpu_side": aggregates.output_tokens_per_s_gpu_side,
        "decode_tokens_per_s": aggregates.decode_tokens_per_s,
        "latency_p90_ms": None if cost.page_latency_ms is None else cost.page_latency_ms.p90,
        "end_to_end_share": None if pipeline is None else pipeline.end_to_end_share,
        "binding": None if pipeline is None or not pipeline.batches else pipeline.binding,
        "workers": None if pipeline is None else pipeline.workers,
        "kv_cache_bytes": None if memory is None else memory.kv_cache_bytes_max,
        "peak_bytes": None if memory is None else memory.peak_bytes_max,
        "pages_did_not_fit": None if memory is None else memory.pages_did_not_fit,
        "kv_cache_bytes_did_not_fit": _unfit_kv(memory),
        "pipeline": None if pipeline is None else to_plain(pipeline),
        "pages_per_gpu_day": cost.pages_per_gpu_day,
        "gpu_cost_per_1000_pages": cost.gpu_cost_per_1000_pages,
        "energy_cost_per_1000_pages": cost.energy_cost_per_1000_pages,
        "cost_per_1000_pages": sum(priced) if priced else None,
    }


def _unfit_kv(memory: Memory | None) -> int | None:
    """The largest KV cache a batch that did not fit would have needed (bytes)."""
    needed = [
        batch.kv_cache_bytes
        for batch in (memory.batches if memory else [])
        if not batch.fit and batch.kv_cache_bytes is not None
    ]
    return max(needed) if needed else None


def arm_status(run: VariantRun) -> str:
    """How the comparison reads an arm: its gate's status, except that a sweep point some
    of whose pages ran out of memory did not fit (a gated arm's gate says so itself)."""
    status = run.gate["status"] if run.gate else BASELINE
    memory = run.metrics.memory
    if status == "not_applicable" and memory is not None and memory.pages_did_not_fit:
        return DID_NOT_FIT
    return status


def cheapest_within(settings: Sequence[dict[str, Any]], bound_ms: float | None) -> dict[str, Any]:
    """The cheapest setting (the baseline or a gate-passed variant) whose page latency (a
    page at its real length, its 90th percentile across pages) is within `bound_ms`: by cost
    per 1,000 pages when every candidate is priced, else by pages per GPU-day. Sweep points
    compute another workload and failed variants another answer, so neither is a candidate.
    {name: None, reason} when none qualifies or no bound is set."""
    if bound_ms is None:
        return {"name": None, "reason": "no latency bound is set (cost.latency_slo_ms)"}
    runnable = [s for s in settings if s["status"] in (BASELINE, "passed")]
    timed = [s for s in runnable if s["latency_p90_ms"] is not None]
    within = [s for s in timed if s["latency_p90_ms"] <= bound_ms]
    if not within:
        fastest = min((s["latency_p90_ms"] for s in timed), default=None)
        reason = "no setting was costed end to end"
        if fastest is not None:
            reason = f"the fastest setting's p90 is {fastest:,.0f} ms a page"
        return {"name": None, "reason": f"no setting meets {bound_ms:,.0f} ms: {reason}"}
    if all(s["cost_per_1000_pages"] is not None for s in within):
        best = min(within, key=lambda s: s["cost_per_1000_pages"])
        by = "cost per 1,000 pages"
    else:
        best = max(within, key=lambda s: s["pages_per_gpu_day"])
        by = "pages per GPU-day (no price set)"
    return {**best, "by": by, "bound_ms": bound_ms, "candidates": len(within)}


def headline_peak(metrics: MetricsDocument) -> str:
    """The peak column a reader is shown: the datasheet where known, else the calibrated."""
    return "datasheet" if metrics.peaks.reference.tflops else "calibrated"


def compare_variants(
    baseline: VariantRun, variants: Sequence[VariantRun], control: VariantRun | None = None
) -> dict[str, Any]:
    """comparison.json content: variants (the A/A control, if any, after the baseline), one
    row per variant x stage against the reference (the baseline, averaged with the control),
    best per stage, each setting's cost of a page and the cheapest within the run's latency
    bound."""
    base_pages = page_means(baseline.per_image)
    control_pages = page_means(control.per_image) if control else {}
    shard = page_shards(baseline.per_image)
    stages = [s for s in STAGE_ORDER if s in base_pages]
    references = {
        stage: stage_reference(base_pages[stage], control_pages.get(stage), shard)
        for stage in stages
    }
    arms = [(baseline, BASELINE), *([(control, CONTROL)] if control else [])]
    arms += [(variant, arm_status(variant)) for variant in variants]
    measured = []
    for run, status in arms:
        means = page_means(run.per_image)
        measured += [_measure(run, status, s, references[s], means.get(s)) for s in stages]
    rows = _judged_rows(measured)
    entries = [_variant_entry(run, status) for run, status in arms]
    baseline_warmup = entries[0]["warmup_ms"]
    settings = [
        _setting(run, entry["status"])
        for (run, _), entry in zip(arms, entries, strict=True)
        if entry["status"] != CONTROL
    ]
    bound = baseline.metrics.config.get("cost", {}).get("latency_slo_ms")
    return {
        "baseline": baseline.name,
        "control": control.name if control else None,
        "variants": [_with_payback(entry, baseline_warmup, rows) for entry in entries],
        "stages": stages,
        "peak": headline_peak(baseline.metrics),
        "rows": rows,
        "best": best_per_stage(rows, stages),
        "settings": settings,
        "latency_slo_ms": bound,
        "cheapest_within_slo": cheapest_within(settings, bound),
        "method": METHOD,
        "how_to_add": HOW_TO_ADD,
    }


def write_comparison(
    comparison: dict[str, Any], json_path: str | Path, csv_path: str | Path
) -> None:
    """comparison.json and comparison.csv (one row per variant x stage)."""
    write_json_atomic(json_path, comparison)
    with atomic_open(csv_path) as handle:
        pd.DataFrame(comparison["rows"]).to_csv(handle, index=False)

"""What a run's numbers say, as data: its throughput (end to end, with the GPU side and
decode only beside it), cost centres, how well the hardware is used, the recommendation
rules that fire, the widest gap between page categories and what each variant buys.

Every finding follows from metrics.json, the run's tables, the operator table or the
variant comparison by an explicit rule with named thresholds, so it changes when the numbers
do. `vlmprof.report.sentences` words them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vlmprof.metrics.document import MbuStage, MetricsDocument, MfuStage
from vlmprof.report.formatting import display_name
from vlmprof.report.operators import operator_stage_share
from vlmprof.report.timed_busy import quoted_dilation, quoted_verdict
from vlmprof.report.timing import CATEGORY_STAGES, PART_STAGES, page_split, timed
from vlmprof.variants.comparison import PAGE, fastest_row
from vlmprof.variants.switches import BASELINE

# Rule thresholds (fractions).
DECODE_SHARE_HIGH = 0.50  # decode above this share of page time is the main cost
DECODE_MBU_LOW = 0.10  # decode moving less than this share of peak bandwidth
SAM_OF_VISION_HIGH = 0.50  # SAM above this share of vision time dominates vision
VISION_SHARE_MATTERS = 0.20  # vision advice only when vision is this much of the page
LLM_OF_PREFILL_HIGH = 0.50  # the decoder's part above this share of prefill
PREFILL_SHARE_HIGH = 0.50
PREFILL_MFU_LOW = 0.30
MOE_OF_STAGE_HIGH = 0.15  # MoE operators above this share of LLM prefill or decode time
COPIES_OF_PAGE_HIGH = 0.10  # copies above this estimated share of page time

# The recommendation rules, by name.
DECODE_BOUND = "decode-bound, bandwidth idle"
DECODE_LAUNCH_BOUND = "decode launch-bound"
SAM_DOMINATES = "SAM dominates vision"
LLM_PREFILL_DOMINATES = "LLM prefill dominates prefill"
PREFILL_COMPUTE_IDLE = "prefill leaves compute idle"
MOE_ONE_BY_ONE = "MoE experts run one by one"
COPIES_TOP_COST = "copies are a top cost"
NOT_REPEATABLE = "timings not repeatable"
FAILED_PAGES = "failed pages"
CPU_RUN = "CPU run"
NO_RULE_FIRED = "no rule fired"

# Why a variant comparison has nothing to compare.
NO_COMPARISON = "no comparison"
BASELINE_ONLY = "baseline only"
BASELINE_UNTIMED = "baseline untimed"
# Stages the summary names a best variant for.
SUMMARY_STAGES: tuple[str, ...] = ("vision", "llm_prefill", "decode", PAGE)
# The parts of a page whose distance to their roofline bound the summary weighs.
BOUND_STAGES: tuple[str, ...] = ("vision", "llm_prefill", "decode")
# What keeps a variant's times from counting as a speedup.
NO_RECORDS = "no ok records"
FAILED_GATE = "failed gate"
DIFFERENT_WORKLOAD = "different workload"
DID_NOT_FIT = "did not fit"


@dataclass(frozen=True)
class Throughput:
    """The run's rates, totals over totals: output tokens/s and pages/s end to end (None for
    records from before their host-clock spans), on the GPU side, and decode only."""

    end_to_end: float | None
    pages_end_to_end: float | None
    devices: int  # devices that ran at once end to end (0: not measured)
    gpu_side: float | None
    decode: float | None
    on_cpu: bool


@dataclass(frozen=True)
class CostCentre:
    """Where time goes: an operator category (or a stage part without an operator pass)."""

    name: str
    stage: str  # display name of the stage it predominantly affects
    share: float  # estimated fraction of a page's prefill + decode time
    share_in_stage: float | None  # its fraction of that stage's time (None: a stage part)
    lead_operator: str | None  # the operator that carries most of it there


@dataclass(frozen=True)
class Recommendation:
    """One rule that fired (one of the rule names above) and the numbers that made it fire:
    fractions, stage names, counts."""

    rule: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PeakUse:
    """A stage's MFU or MBU against the datasheet peak where known, else the calibrated."""

    stage: str
    kind: str  # "mfu" or "mbu"
    fraction: float
    peak: str  # the peak column divided by: "datasheet" or "calibrated"
    peak_value: float  # that peak: TFLOP/s for MFU, TB/s for MBU
    calibrated: float | None  # against the calibrated peak too, where `peak` is the datasheet
    configured: bool  # the datasheet peak was set in the configuration
    no_datasheet: str  # why there is no datasheet figure (empty where there is one)


@dataclass(frozen=True)
class Busy:
    """A stage in the operator pass's timeline: busy fraction, mean kernel (or operator)
    time and whether it is launch-bound."""

    fraction: float  # against the timed stage where the run has it (see `dilation`)
    mean_kernel_us: float | None
    launch_bound: bool
    dilation: float | None  # the profiler pass's slowdown; None: busy under the profiler
    capped: bool  # the timed fraction was capped at 1


@dataclass(frozen=True)
class Utilisation:
    """How prefill and decode use the hardware; vision's and LLM prefill's MFU at their
    headline peak where both are known."""

    on_cpu: bool
    prefill: PeakUse | None
    prefill_busy: Busy | None
    vision: float | None
    llm_prefill: float | None
    decode: PeakUse | None
    decode_busy: Busy | None


@dataclass(frozen=True)
class CategoryGap:
    """The widest difference between two page categories in one stage."""

    stage: str
    slow: str
    fast: str
    ratio: float  # slow mean over fast mean
    slow_ms: float
    fast_ms: float
    tolerance: float  # the repeatability tolerance it exceeds


@dataclass(frozen=True)
class StageOutcome:
    """A stage's best gate-passed variant (its comparison row; for decode also its per-token
    row) or, where none is measurably faster, the passed variant closest to it; `peak` is
    the peak column its roofline distance is read at."""

    stage: str
    peak: str
    best: dict[str, Any] | None
    per_token: dict[str, Any] | None
    closest: dict[str, Any] | None


@dataclass(frozen=True)
class VariantCaveat:
    """A variant whose times are no speedup: why, its entry in the comparison and, for a
    different workload, its whole-page row (for one that did not fit, its setting)."""

    kind: str
    variant: dict[str, Any]
    page: dict[str, Any] | None = None


@dataclass(frozen=True)
class FurthestStage:
    """The part of a page furthest from its roofline bound once each part runs its best
    gate-passed variant (the baseline where none is measurably faster): the comparison row
    read, at the headline peak."""

    stage: str
    row: dict[str, Any]
    peak: str


@dataclass(frozen=True)
class VariantFindings:
    """What the optimisations buy: a gap (nothing to compare) or, per stage of
    `SUMMARY_STAGES`, the outcome, then the caveats, and the stage now furthest from its
    bound."""

    gap: str | None
    how_to_add: str
    any_passed: bool
    stages: list[StageOutcome]
    caveats: list[VariantCaveat]
    furthest: FurthestStage | None = None
    # Shards whose A/A control measured the drift between runs (0: no control ran).
    drift_shards: int = 0
    # The gate verdicts of the variants the gate judged (sweep points are not).
    gated: list[dict[str, Any]] = field(default_factory=list)


# --- throughput --------------------------------------------------------------------------


def throughput(metrics: MetricsDocument) -> Throughput:
    """What the run generated per second, end to end first."""
    aggregates = metrics.aggregates
    wall = aggregates.end_to_end
    return Throughput(
        end_to_end=aggregates.output_tokens_per_s_end_to_end,
        pages_end_to_end=aggregates.pages_per_s_end_to_end,
        devices=0 if wall is None else wall.devices or 0,
        gpu_side=aggregates.output_tokens_per_s_gpu_side,
        decode=aggregates.decode_tokens_per_s,
        on_cpu=on_cpu(metrics),
    )


# --- cost centres ------------------------------------------------------------------------


def _part_fractions(metrics: MetricsDocument) -> pd.Series:
    """Each operator-pass stage's share of a page's measured time."""
    split = page_split(metrics)["share (%)"] / 100.0
    return split.groupby(split.index.map(PART_STAGES)).sum()


def cost_centres(
    metrics: MetricsDocument, operators: pd.DataFrame | None, n: int = 3
) -> list[CostCentre]:
    """The `n` largest cost centres of a page (none when no page was timed).

    With an operator table: each category's share of every stage's operator time, weighted
    by that stage's share of measured page time (prefill + decode, timing runs), so the
    profiler's overhead does not tilt stages against each other; a centre's stage is where
    most of its weighted time falls. Without one: the exclusive parts of the page.
    """
    if not timed(metrics):
        return []
    if operators is None:
        split = page_split(metrics)["share (%)"].sort_values(ascending=False) / 100.0
        return [CostCentre(str(p), str(p), float(s), None, None) for p, s in split.head(n).items()]
    fractions = _part_fractions(metrics)
    shares = operator_stage_share(operators).fillna(0.0) / 100.0
    stages = [s for s in fractions.index if s in shares.columns]
    weighted = shares[stages] * fractions[stages]
    totals = weighted.sum(axis=1).sort_values(ascending=False)
    centres = []
    for category, share in totals.head(n).items():
        stage = str(weighted.loc[category].idxmax())
        ops = operators[operators["category"] == category]
        lead = ops.loc[ops[f"{stage} (ms)"].idxmax(), "operator"] if len(ops) else None
        centres.append(
            CostCentre(
                name=str(category),
                stage=display_name(stage),
                share=float(share),
                share_in_stage=float(shares.loc[category, stage]),
                lead_operator=lead,
            )
        )
    return centres


# --- utilisation -------------------------------------------------------------------------


def on_cpu(metrics: MetricsDocument) -> bool:
    """Whether the timed runs ran on the CPU."""
    return str(metrics.environment.device_used or "").startswith("cpu")


def _stage_ratio(metrics: MetricsDocument, kind: str, stage: str) -> MfuStage | MbuStage | None:
    """A stage's MFU (`kind` "mfu") or MBU ("mbu") entry; None where the run has none."""
    section = metrics.mbu if kind == "mbu" else metrics.mfu
    return section.per_stage.get(stage)


def _best_peak(metrics: MetricsDocument, kind: str, stage: str) -> tuple[float | None, str]:
    """MFU or MBU of a stage against the datasheet peak where known, else the calibrated."""
    entry = _stage_ratio(metrics, kind, stage)
    if entry is not None and entry.datasheet is not None:
        return entry.datasheet, "datasheet"
    return (None if entry is None else entry.calibrated), "calibrated"


def peak_use(metrics: MetricsDocument, kind: str, stage: str) -> PeakUse | None:
    """`stage`'s MFU (`kind` "mfu") or MBU ("mbu") at its headline peak; None unknown."""
    value, peak = _best_peak(metrics, kind, stage)
    entry = _stage_ratio(metrics, kind, stage)
    if value is None or entry is None:
        return None
    peaks = metrics.peaks
    used = peaks.reference if peak == "datasheet" else peaks.calibrated
    datasheet = peak == "datasheet"
    return PeakUse(
        stage=stage,
        kind=kind,
        fraction=value,
        peak=peak,
        peak_value=used.tbps if kind == "mbu" else used.tflops,
        calibrated=entry.calibrated if datasheet else None,
        configured=peaks.override is not None,
        no_datasheet="" if datasheet else peaks.reference.reason or "no datasheet figure",
    )


def busy(metrics: MetricsDocument, stage: str) -> Busy | None:
    """`stage` in the operator pass's timeline; None without one."""
    timeline = (metrics.timeline or {}).get(stage)
    if timeline is None:
        return None
    return Busy(
        fraction=timeline.quoted_busy_fraction(),
        mean_kernel_us=timeline.mean_kernel_us,
        launch_bound=quoted_verdict(timeline) == "launch-bound",
        dilation=quoted_dilation(timeline),
        capped=bool(timeline.busy_fraction_capped),
    )


def utilisation_findings(metrics: MetricsDocument) -> Utilisation:
    """How well prefill (compute) and decode (memory bandwidth) use the hardware."""
    vision, _ = _best_peak(metrics, "mfu", "vision")
    llm, _ = _best_peak(metrics, "mfu", "llm_prefill")
    both = vision is not None and llm is not None
    return Utilisation(
        on_cpu=on_cpu(metrics),
        prefill=peak_use(metrics, "mfu", "prefill"),
        prefill_busy=busy(metrics, "prefill"),
        vision=vision if both else None,
        llm_prefill=llm if both else None,
        decode=peak_use(metrics, "mbu", "decode"),
        decode_busy=busy(metrics, "decode"),
    )


# --- recommendations ---------------------------------------------------------------------


def _mean(metrics: MetricsDocument, stage: str) -> float:
    """Mean time (ms) of a stage the rules weigh (every rule runs on a timed run)."""
    return metrics.aggregates.stage_ms[stage].mean


def _fraction(metrics: MetricsDocument, part: str) -> float:
    return _mean(metrics, part) / (_mean(metrics, "prefill") + _mean(metrics, "decode"))


def _decode_rules(metrics: MetricsDocument) -> list[Recommendation]:
    decode_share = _fraction(metrics, "decode")
    mbu, peak = _best_peak(metrics, "mbu", "decode")
    if decode_share > DECODE_SHARE_HIGH and mbu is not None and mbu < DECODE_MBU_LOW:
        return [
            Recommendation(DECODE_BOUND, {"decode_share": decode_share, "mbu": mbu, "peak": peak})
        ]
    timeline = busy(metrics, "decode")
    if timeline is not None and timeline.launch_bound:
        return [Recommendation(DECODE_LAUNCH_BOUND, {"busy": timeline, "on_cpu": on_cpu(metrics)})]
    return []


def _prefill_rules(metrics: MetricsDocument) -> list[Recommendation]:
    found = []
    vision_share = _fraction(metrics, "vision")
    # A model without SAM (a transformers VLM) has no SAM time to weigh.
    sam = metrics.aggregates.mean_ms("sam") or 0.0
    sam_of_vision = sam / _mean(metrics, "vision")
    if vision_share > VISION_SHARE_MATTERS and sam_of_vision > SAM_OF_VISION_HIGH:
        found.append(
            Recommendation(
                SAM_DOMINATES, {"sam_of_vision": sam_of_vision, "vision_share": vision_share}
            )
        )
    prefill = _mean(metrics, "prefill")
    llm_of_prefill = (prefill - _mean(metrics, "vision")) / prefill
    if llm_of_prefill > LLM_OF_PREFILL_HIGH:
        found.append(Recommendation(LLM_PREFILL_DOMINATES, {"llm_of_prefill": llm_of_prefill}))
    mfu, peak = _best_peak(metrics, "mfu", "prefill")
    prefill_share = _fraction(metrics, "prefill")
    if prefill_share > PREFILL_SHARE_HIGH and mfu is not None and mfu < PREFILL_MFU_LOW:
        found.append(
            Recommendation(
                PREFILL_COMPUTE_IDLE, {"prefill_share": prefill_share, "mfu": mfu, "peak": peak}
            )
        )
    return found


def _operator_rules(
    metrics: MetricsDocument, operators: pd.DataFrame | None, centres: list[CostCentre]
) -> list[Recommendation]:
    if operators is None:
        return []
    found = []
    shares = operator_stage_share(operators).fillna(0.0) / 100.0
    experts = metrics.config["model"]["experts_implementation"]
    if "moe" in shares.index and experts == "eager":
        stage = max(("llm_prefill", "decode"), key=lambda s: shares.loc["moe"].get(s, 0.0))
        moe = float(shares.loc["moe"].get(stage, 0.0))
        if moe > MOE_OF_STAGE_HIGH:
            found.append(Recommendation(MOE_ONE_BY_ONE, {"moe": moe, "stage": stage}))
    copies = next((c for c in centres if c.name == "copies"), None)
    if copies is not None and copies.share > COPIES_OF_PAGE_HIGH:
        found.append(Recommendation(COPIES_TOP_COST, {"centre": copies}))
    return found


def _quality_rules(metrics: MetricsDocument) -> list[Recommendation]:
    found = []
    rep = metrics.repeatability
    if rep.passed is False:
        found.append(
            Recommendation(
                NOT_REPEATABLE,
                {"stages": list(rep.failing_stages), "tolerance": rep.tolerance},
            )
        )
    if metrics.counts.error:
        found.append(Recommendation(FAILED_PAGES, {"counts": metrics.counts}))
    if on_cpu(metrics):
        found.append(Recommendation(CPU_RUN))
    return found


def recommendations(
    metrics: MetricsDocument, operators: pd.DataFrame | None, centres: list[CostCentre]
) -> list[Recommendation]:
    """Every rule that fires on this run's numbers: cost rules first (when a page was
    timed), then caveats; `NO_RULE_FIRED` alone when none does."""
    found = (
        [
            *_decode_rules(metrics),
            *_prefill_rules(metrics),
            *_operator_rules(metrics, operators, centres),
        ]
        if timed(metrics)
        else []
    )
    found += _quality_rules(metrics)
    return found or [Recommendation(NO_RULE_FIRED)]


# --- categories --------------------------------------------------------------------------


def category_gap(per_category: pd.DataFrame, tolerance: float) -> CategoryGap | None:
    """The largest difference between categories in one stage of `CATEGORY_STAGES`, when
    the slower category's mean exceeds the faster's by more than `tolerance` (the
    repeatability tolerance: what repeats of one page may differ by); else None.

    `per_category` is tables/per_category.csv; categories without ok records are left out.
    """
    means = per_category.dropna(subset=["mean (ms)"])
    widest: CategoryGap | None = None
    for stage in CATEGORY_STAGES:
        stage_means = means[means["stage"] == stage].set_index("category")["mean (ms)"]
        stage_means = stage_means[stage_means > 0]
        if len(stage_means) < 2:
            continue
        slow, fast = str(stage_means.idxmax()), str(stage_means.idxmin())
        ratio = stage_means[slow] / stage_means[fast]
        if widest is None or ratio > widest.ratio:
            widest = CategoryGap(
                stage, slow, fast, ratio, stage_means[slow], stage_means[fast], tolerance
            )
    if widest is None or widest.ratio <= 1.0 + tolerance:
        return None
    return widest


# --- variants ----------------------------------------------------------------------------


def comparison_gap(comparison: dict[str, Any] | None) -> str | None:
    """Why there is nothing to compare (`NO_COMPARISON`, `BASELINE_ONLY`,
    `BASELINE_UNTIMED`), or None when there is."""
    if comparison is None:
        return NO_COMPARISON
    if len(comparison["variants"]) < 2:
        return BASELINE_ONLY
    if not comparison["stages"]:
        return BASELINE_UNTIMED
    return None


def _stage_outcome(comparison: dict[str, Any], stage: str) -> StageOutcome:
    """The best variant of `stage`, or the closest gate-passed one."""
    rows = {(r["variant"], r["stage"]): r for r in comparison["rows"]}
    best = comparison["best"].get(stage)
    if best is not None:
        per_token = rows.get((best, "decode_per_token")) if stage == "decode" else None
        return StageOutcome(stage, comparison["peak"], rows[(best, stage)], per_token, None)
    closest = max(
        (
            r
            for r in comparison["rows"]
            if r["stage"] == stage and r["status"] == "passed" and r["ratio"] is not None
        ),
        key=lambda r: r["ratio"],
        default=None,
    )
    return StageOutcome(stage, comparison["peak"], None, None, closest)


def furthest_from_bound(comparison: dict[str, Any] | None) -> FurthestStage | None:
    """Of `BOUND_STAGES`, the one whose best variant (else the baseline) is the most times
    above its roofline bound at the headline peak; None without a comparison or bounds."""
    if comparison_gap(comparison) is not None or not comparison.get("peak"):
        return None
    peak = comparison["peak"]
    rows = (fastest_row(comparison, stage) for stage in BOUND_STAGES)
    candidates = [r for r in rows if r is not None and r.get(f"roofline_x_{peak}") is not None]
    if not candidates:
        return None
    row = max(candidates, key=lambda r: r[f"roofline_x_{peak}"])
    return FurthestStage(row["stage"], row, peak)


def _caveats(comparison: dict[str, Any]) -> list[VariantCaveat]:
    """The variants whose times are no speedup: a batch that did not fit in the device's
    memory (with its setting's memory figures), no ok records, a failed gate, or another
    workload with its page time."""
    rows = {(r["variant"], r["stage"]): r for r in comparison["rows"]}
    caveats = []
    settings = {setting["name"]: setting for setting in comparison.get("settings", [])}
    for variant in comparison["variants"]:
        if variant["status"] == "did_not_fit":
            caveats.append(VariantCaveat(DID_NOT_FIT, variant, settings.get(variant["name"])))
            continue
        if variant["status"] != BASELINE and variant["records_ok"] == 0:
            caveats.append(VariantCaveat(NO_RECORDS, variant))
            continue
        if variant["status"] == "failed":
            caveats.append(VariantCaveat(FAILED_GATE, variant))
        page = rows.get((variant["name"], PAGE))
        if variant["status"] == "not_applicable" and page is not None and page["ms"]:
            caveats.append(VariantCaveat(DIFFERENT_WORKLOAD, variant, page))
    return caveats


def drift_shards(comparison: dict[str, Any]) -> int:
    """How many shards measured the drift between runs on the whole page (0 without an
    A/A control): one gives the verdicts a single degree of freedom."""
    return max((r["drift_shards"] for r in comparison["rows"] if r["stage"] == PAGE), default=0)


def variant_findings(comparison: dict[str, Any] | None) -> VariantFindings:
    """What each optimisation buys: the best gate-passed variant per stage of
    `SUMMARY_STAGES` the comparison holds, then the variants that timed nothing, failed
    their gate or are sweep points (different workloads)."""
    gap = comparison_gap(comparison)
    if gap is not None:
        how_to_add = "" if comparison is None else comparison["how_to_add"]
        return VariantFindings(gap, how_to_add, False, [], [])
    any_passed = any(v["status"] == "passed" for v in comparison["variants"])
    stages = [s for s in SUMMARY_STAGES if s in comparison["stages"]] if any_passed else []
    return VariantFindings(
        gap=None,
        how_to_add=comparison["how_to_add"],
        any_passed=any_passed,
        stages=[_stage_outcome(comparison, stage) for stage in stages],
        caveats=_caveats(comparison),
        furthest=furthest_from_bound(comparison),
        drift_shards=drift_shards(comparison),
        gated=gated(comparison),
    )


def gated(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The gate verdicts of the variants the gate judged (passed or failed; not the sweep
    points), in the comparison's order."""
    return [v["gate"] for v in comparison["variants"] if (v["gate"] or {}).get("factors")]

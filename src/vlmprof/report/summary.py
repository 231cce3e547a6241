"""The plain-language findings of a run: cost centres, utilisation in words, recommendations.

Everything is derived from metrics.json and the operator table by explicit rules with named
thresholds, so a sentence changes when the numbers do. Functions return structured data
(dataclasses) and the sentences built from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml

from vlmprof.report.tables import (
    CATEGORY_STAGES,
    STAGE_NAMES,
    operator_stage_share,
    page_split,
    timed,
)
from vlmprof.report.timed_busy import quoted_busy, quoted_verdict
from vlmprof.variants.comparison import (
    BASELINE,
    NO_BYTES,
    PAGE,
    comparison_note,
    gate_difference,
    switches_text,
)

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
# Operator-pass stage that holds the time of each exclusive part of a page.
_PART_STAGE = {
    "SAM": "sam",
    "CLIP": "clip",
    "projector": "projector",
    "vision remainder": "llm_prefill",
    "LLM prefill": "llm_prefill",
    "decode": "decode",
}
REPRODUCE_COMMAND = "snakemake --cores 1 --resources gpu=1 --configfile run-config.yaml"


def bullets(sentences: list[str], literal: bool = False) -> str:
    """Sentences as a Markdown list (empty text for none); `literal` escapes Markdown's
    emphasis and code marks, for text written as plain prose (e.g. "2*m*k*n")."""
    if literal:
        sentences = [re.sub(r"([*_`\\])", r"\\\1", sentence) for sentence in sentences]
    return "\n".join(f"- {sentence}" for sentence in sentences)


def percent(fraction: float) -> str:
    """A fraction as a percentage: one decimal, or two significant digits below 0.1%."""
    value = 100.0 * fraction
    return f"{value:.1f}%" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}%"


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
    """One rule that fired: its name, the numbers that triggered it, what to try."""

    rule: str
    evidence: str
    action: str


def _part_fractions(metrics: dict[str, Any]) -> pd.Series:
    split = page_split(metrics)["share (%)"] / 100.0
    return split.groupby(split.index.map(_PART_STAGE)).sum()


def cost_centres(
    metrics: dict[str, Any], operators: pd.DataFrame | None, n: int = 3
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
                stage=STAGE_NAMES.get(stage, stage),
                share=float(share),
                share_in_stage=float(shares.loc[category, stage]),
                lead_operator=lead,
            )
        )
    return centres


def cost_centre_table(centres: list[CostCentre]) -> pd.DataFrame:
    """The cost centres as a table for the page."""
    return pd.DataFrame(
        {
            "cost centre": [c.name for c in centres],
            "mainly affects": [c.stage for c in centres],
            "share of page time": [percent(c.share) for c in centres],
            "share of that stage": [
                "-" if c.share_in_stage is None else percent(c.share_in_stage) for c in centres
            ],
            "largest operator": [c.lead_operator or "-" for c in centres],
        },
        index=pd.RangeIndex(1, len(centres) + 1, name="rank"),
    )


def cost_centre_sentences(centres: list[CostCentre]) -> list[str]:
    """One sentence per cost centre."""
    sentences = []
    for centre in centres:
        if centre.share_in_stage is None:
            sentences.append(
                f"**{centre.name}** takes about {percent(centre.share)} of a page's time "
                "(no operator pass in this run to break it down further)."
            )
            continue
        lead = f" (mostly `{centre.lead_operator}`)" if centre.lead_operator else ""
        sentences.append(
            f"**{centre.name}**{lead} takes about {percent(centre.share)} of a page's time, "
            f"mostly in {centre.stage}, where it is {percent(centre.share_in_stage)} of the work."
        )
    return sentences


def _best_peak(metrics: dict[str, Any], kind: str, stage: str) -> tuple[float | None, str]:
    """MFU or MBU of a stage against the datasheet peak where known, else the calibrated."""
    entry = metrics[kind].get("per_stage", {}).get(stage, {})
    if entry.get("datasheet") is not None:
        return entry["datasheet"], "datasheet"
    return entry.get("calibrated"), "calibrated"


def _device_words(metrics: dict[str, Any]) -> tuple[str, str]:
    """("GPU", "kernels") or ("processor", "operations")."""
    cpu = str(metrics["environment"].get("device_used") or "").startswith("cpu")
    return ("processor", "operations") if cpu else ("GPU", "kernels")


def _peak_phrase(metrics: dict[str, Any], kind: str, stage: str, what: str) -> str | None:
    value, peak = _best_peak(metrics, kind, stage)
    if value is None:
        return None
    peaks = metrics["peaks"]
    unit, key = ("TB/s", "tbps") if kind == "mbu" else ("TFLOP/s", "tflops")
    if peak == "datasheet":
        source = "the configuration sets as peak" if "override" in peaks else "the card offers"
        phrase = f"{percent(value)} of the {what} {source} ({peaks['reference'][key]:g} {unit})"
        calibrated = metrics[kind]["per_stage"][stage].get("calibrated")
        if calibrated is not None:
            phrase += f" and {percent(calibrated)} of what was measured on it"
        return phrase
    reason = peaks["reference"].get("reason") or "no datasheet figure"
    return (
        f"{percent(value)} of the {what} measured on this machine "
        f"({peaks['calibrated'][key]:.3g} {unit}; {reason})"
    )


def _timeline_phrase(metrics: dict[str, Any], stage: str) -> str:
    timeline = (metrics.get("timeline") or {}).get(stage)
    if not timeline:
        return ""
    device, ops = _device_words(metrics)
    busy, how = quoted_busy(timeline)
    mean = timeline["mean_kernel_us"]
    detail = f"the {device} is busy {percent(busy)} of the time"
    if mean is not None:
        detail += f", with {ops} of {mean:.1f} us on average"
    if quoted_verdict(timeline) == "launch-bound":
        return f", and is launch-bound per the timeline: {detail}; busy is {how}"
    return f"; it is not launch-bound per the timeline ({detail}); busy is {how}"


def utilisation_findings(metrics: dict[str, Any]) -> list[str]:
    """How well prefill and decode use the hardware, in words."""
    findings = []
    prefill = _peak_phrase(metrics, "mfu", "prefill", "compute")
    if prefill:
        findings.append(f"Prefill uses {prefill}{_timeline_phrase(metrics, 'prefill')}.")
        vision, _ = _best_peak(metrics, "mfu", "vision")
        llm, _ = _best_peak(metrics, "mfu", "llm_prefill")
        if vision is not None and llm is not None:
            findings.append(
                f"Within prefill, vision reaches {percent(vision)} and LLM prefill "
                f"{percent(llm)} of that compute peak."
            )
    decode = _peak_phrase(metrics, "mbu", "decode", "memory bandwidth")
    if decode:
        findings.append(f"Decode moves {decode}{_timeline_phrase(metrics, 'decode')}.")
    if not findings:
        findings.append("No utilisation figure: no ok record or no peak to divide by.")
    return findings


def failed_phrase(counts: dict[str, Any]) -> str:
    """Failures as pages and records ("5 of 16 pages failed (10 of 32 records)"), or that
    every record is ok."""
    if not counts["error"]:
        return f"all {counts['records']} records ok"
    return (
        f"{counts['images_failed']} of {counts['images']} pages failed "
        f"({counts['error']} of {counts['records']} records)"
    )


def headline(metrics: dict[str, Any]) -> str:
    """One sentence: time per page split into prefill (with vision) and decode."""
    stages, counts = metrics["aggregates"]["stage_ms"], metrics["counts"]
    size = f"{counts['images']} pages x {counts['repeats']} repeats, {failed_phrase(counts)}"
    if not timed(metrics):
        return f"No page was timed: {size}. The engineering report lists why each one failed."
    env = metrics["environment"]
    device = env.get("gpu_name") or env.get("cpu_model") or env.get("device_used")
    prefill, decode = stages["prefill"]["mean"], stages["decode"]["mean"]
    tokens = metrics["aggregates"]["tokens"]["mean"]
    rate = metrics["aggregates"]["tokens_per_s"]["mean"]
    speed = "" if rate is None else f" ({rate:,.2f} tokens/s while decoding)"
    return (
        f"On {device} ({env.get('device_used')}), one page takes {prefill + decode:,.2f} ms "
        f"on average: prefill {prefill:,.2f} ms (of which vision {stages['vision']['mean']:,.2f}"
        f" ms) and decode {decode:,.2f} ms for {tokens:g} tokens{speed}; {size}."
    )


def _fraction(metrics: dict[str, Any], part: str) -> float:
    stages = metrics["aggregates"]["stage_ms"]
    return stages[part]["mean"] / (stages["prefill"]["mean"] + stages["decode"]["mean"])


def _decode_rules(metrics: dict[str, Any]) -> list[Recommendation]:
    found = []
    decode_share = _fraction(metrics, "decode")
    mbu, peak = _best_peak(metrics, "mbu", "decode")
    timeline = (metrics.get("timeline") or {}).get("decode", {})
    if decode_share > DECODE_SHARE_HIGH and mbu is not None and mbu < DECODE_MBU_LOW:
        found.append(
            Recommendation(
                "decode-bound, bandwidth idle",
                f"decode is {percent(decode_share)} of page time and moves only "
                f"{percent(mbu)} of the {peak} memory bandwidth",
                "batch several pages per decode step, capture the decode step in CUDA graphs "
                "and use a fused MoE kernel (model.experts_implementation: grouped_mm), so "
                "each step reads the weights once for many tokens",
            )
        )
    elif timeline and quoted_verdict(timeline) == "launch-bound":
        device, ops = _device_words(metrics)
        busy, how = quoted_busy(timeline)
        found.append(
            Recommendation(
                "decode launch-bound",
                f"per the timeline the {device} is busy {percent(busy)} of decode time with "
                f"{ops} of {timeline['mean_kernel_us']:.1f} us on average (busy is {how})",
                "cut the per-token launch overhead: CUDA graphs or torch.compile "
                "(mode='reduce-overhead') for the decode step, and fewer small ops per step",
            )
        )
    return found


def _prefill_rules(metrics: dict[str, Any]) -> list[Recommendation]:
    stages = metrics["aggregates"]["stage_ms"]
    found = []
    vision_share = _fraction(metrics, "vision")
    sam_of_vision = stages["sam"]["mean"] / stages["vision"]["mean"]
    if vision_share > VISION_SHARE_MATTERS and sam_of_vision > SAM_OF_VISION_HIGH:
        found.append(
            Recommendation(
                "SAM dominates vision",
                f"SAM is {percent(sam_of_vision)} of vision time, and vision "
                f"{percent(vision_share)} of page time",
                "speed up SAM's attention (flash attention in bf16, torch.compile of the "
                "encoder), and where pages allow use fewer crops (max_crops) or a smaller "
                "mode: SAM's cost grows with the square of the view's tokens",
            )
        )
    llm_of_prefill = (stages["prefill"]["mean"] - stages["vision"]["mean"]) / stages["prefill"][
        "mean"
    ]
    if llm_of_prefill > LLM_OF_PREFILL_HIGH:
        found.append(
            Recommendation(
                "LLM prefill dominates prefill",
                f"the decoder's part is {percent(llm_of_prefill)} of prefill time",
                "shorten the prompt the decoder sees (fewer image tokens: mode, max_crops) and "
                "use fused attention for the long prefill",
            )
        )
    mfu, peak = _best_peak(metrics, "mfu", "prefill")
    prefill_share = _fraction(metrics, "prefill")
    if prefill_share > PREFILL_SHARE_HIGH and mfu is not None and mfu < PREFILL_MFU_LOW:
        found.append(
            Recommendation(
                "prefill leaves compute idle",
                f"prefill is {percent(prefill_share)} of page time at {percent(mfu)} of the "
                f"{peak} compute peak",
                "run in bf16 on tensor cores, batch crops and pages into larger matmuls and "
                "use fused attention kernels",
            )
        )
    return found


def _operator_rules(
    metrics: dict[str, Any], operators: pd.DataFrame | None, centres: list[CostCentre]
) -> list[Recommendation]:
    if operators is None:
        return []
    found = []
    shares = operator_stage_share(operators).fillna(0.0) / 100.0
    experts = metrics["config"]["model"]["experts_implementation"]
    if "moe" in shares.index and experts == "eager":
        stage = max(("llm_prefill", "decode"), key=lambda s: shares.loc["moe"].get(s, 0.0))
        moe = float(shares.loc["moe"].get(stage, 0.0))
        if moe > MOE_OF_STAGE_HIGH:
            found.append(
                Recommendation(
                    "MoE experts run one by one",
                    f"MoE operators are {percent(moe)} of {STAGE_NAMES[stage]} time with "
                    "model.experts_implementation: eager",
                    "switch model.experts_implementation to grouped_mm (or batched_mm) so the "
                    "routed experts run as one grouped matmul",
                )
            )
    copies = next((c for c in centres if c.name == "copies"), None)
    if copies is not None and copies.share > COPIES_OF_PAGE_HIGH:
        found.append(
            Recommendation(
                "copies are a top cost",
                f"copies take about {percent(copies.share)} of page time, mostly in "
                f"{copies.stage} (`{copies.lead_operator}`)",
                "look for layout and dtype conversions in that stage (.contiguous(), .to(), "
                "cat, padding) and keep tensors in the layout the next kernel wants",
            )
        )
    return found


def _quality_rules(metrics: dict[str, Any]) -> list[Recommendation]:
    found = []
    rep = metrics["repeatability"]
    if rep.get("pass") is False:
        tolerance = percent(rep["tolerance"])
        names = ", ".join(STAGE_NAMES.get(s, s) for s in rep["failing_stages"])
        found.append(
            Recommendation(
                "timings not repeatable",
                f"{names} vary by more than +/-{tolerance} across repeats of a page",
                "before comparing runs, use more warmup rounds and repeats on a quiet machine "
                "(and locked clocks on a GPU)",
            )
        )
    if metrics["counts"]["error"]:
        found.append(
            Recommendation(
                "failed pages",
                f"{failed_phrase(metrics['counts'])}; the engineering report lists why",
                "fix or remove those pages; their time is missing from every figure",
            )
        )
    if str(metrics["environment"].get("device_used") or "").startswith("cpu"):
        found.append(
            Recommendation(
                "CPU run",
                "the timed runs ran on the CPU",
                "rerun with device: cuda before sizing GPU work; CPU shares and bottlenecks "
                "differ from a GPU's",
            )
        )
    return found


def recommendations(
    metrics: dict[str, Any], operators: pd.DataFrame | None, centres: list[CostCentre]
) -> list[Recommendation]:
    """Every rule that fires on this run's numbers: cost rules first (when a page was
    timed), then caveats."""
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
    if not found:
        found.append(
            Recommendation(
                "no rule fired",
                "no threshold of the recommendation rules was crossed",
                "nothing to change by these rules; see the engineering report for detail",
            )
        )
    return found


def recommendation_sentences(found: list[Recommendation]) -> list[str]:
    """One sentence per recommendation: the rule, the evidence, then what to try."""
    return [f"**{r.rule[0].upper()}{r.rule[1:]}**: {r.evidence}. *Try*: {r.action}." for r in found]


def reliability_sentence(metrics: dict[str, Any]) -> str:
    """Whether repeats agree within tolerance and how many records failed."""
    rep, counts = metrics["repeatability"], metrics["counts"]
    failed = "no failures" if not counts["error"] else failed_phrase(counts)
    if rep.get("pass") is None:
        agreement = f"repeatability not judged ({rep.get('reason', 'no repeats')})"
    elif rep["pass"]:
        agreement = f"every stage repeats within +/-{percent(rep['tolerance'])}"
    else:
        names = ", ".join(STAGE_NAMES.get(s, s) for s in rep["failing_stages"])
        agreement = f"{names} vary by more than +/-{percent(rep['tolerance'])} across repeats"
    return f"Reliability: {agreement}; {failed}."


def category_sentence(per_category: pd.DataFrame, tolerance: float) -> str | None:
    """The largest difference between categories in one stage of `CATEGORY_STAGES`, as a
    sentence, when the slower category's mean exceeds the faster's by more than `tolerance`
    (the repeatability tolerance: what repeats of one page may differ by); else None.

    `per_category` is tables/per_category.csv; categories without ok records are left out.
    """
    means = per_category.dropna(subset=["mean (ms)"])
    widest: tuple[float, str, str, str, float, float] | None = None
    for stage in CATEGORY_STAGES:
        stage_means = means[means["stage"] == stage].set_index("category")["mean (ms)"]
        stage_means = stage_means[stage_means > 0]
        if len(stage_means) < 2:
            continue
        slow, fast = str(stage_means.idxmax()), str(stage_means.idxmin())
        ratio = stage_means[slow] / stage_means[fast]
        if widest is None or ratio > widest[0]:
            widest = (ratio, stage, slow, fast, stage_means[slow], stage_means[fast])
    if widest is None or widest[0] <= 1.0 + tolerance:
        return None
    ratio, stage, slow, fast, slow_ms, fast_ms = widest
    return (
        f"Pages of category `{slow}` take {times(ratio)} as long as those of `{fast}` in "
        f"{STAGE_NAMES[stage]} ({slow_ms:,.2f} ms against {fast_ms:,.2f} ms on average), "
        f"more than the +/-{percent(tolerance)} repeats of one page may differ by: the mix "
        "of pages moves the averages above."
    )


def run_config_yaml(metrics: dict[str, Any]) -> str:
    """The run's configuration as a config file (the resolved device facts left out)."""
    config = {k: v for k, v in metrics["config"].items() if k != "resolved"}
    return yaml.safe_dump(config, sort_keys=True)


def reproduce_sentence(metrics: dict[str, Any]) -> str:
    """How to rerun this run: the command, the config it needs and the hash to expect."""
    commit = metrics["environment"].get("git_commit")
    checkout = f"check out commit `{commit}`, " if commit else ""
    return (
        f"To reproduce: {checkout}save this run's configuration (the last section of the "
        f"engineering report) as `run-config.yaml` and run `{REPRODUCE_COMMAND}`; the new "
        f"run's metrics.json carries config hash `{metrics['config_hash'][:12]}` when the "
        "configuration and resolved device match."
    )


# --- variants ----------------------------------------------------------------------------

# Stages the summary names a best variant for, with the word a reader knows them by.
VARIANT_STAGES: dict[str, str] = {
    "vision": "Vision",
    "llm_prefill": "LLM prefill",
    "decode": "Decode",
    PAGE: "Whole page",
}
_ROOF_WORDS = {"compute": "compute limit", "memory": "memory-bandwidth limit"}


def times(ratio: float) -> str:
    """A ratio for reading: whole from 10 up ("12x"), else two decimals ("1.52x")."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _interval(row: dict[str, Any]) -> str:
    """ "95% interval 1.02x to 1.15x" of a comparison row (empty when it has none)."""
    if row["ratio_low"] is None or row["ratio_high"] is None:
        return "no interval from a single page"
    return f"95% interval {times(row['ratio_low'])} to {times(row['ratio_high'])}"


def _limit_phrase(row: dict[str, Any], peak: str) -> str:
    """How far the row's stage is from its roofline bound, in words ("" when unknown)."""
    distance, bound = row[f"roofline_x_{peak}"], row[f"bound_{peak}"]
    if distance is None:
        return ""
    where = " measured on this machine" if peak == "calibrated" else ""
    if bound in _ROOF_WORDS:
        return f", still {times(distance)} from the {_ROOF_WORDS[bound]}{where}"
    if bound == NO_BYTES:
        return (
            f", at most {times(distance)} from the compute limit{where} (its memory traffic "
            "is not counted)"
        )
    return f", still {times(distance)} from the hardware limit{where}"


def _best_sentence(
    label: str, row: dict[str, Any], per_token: dict[str, Any] | None, peak: str
) -> str:
    """The best variant of a stage: its speedup, interval, time and distance to the limit."""
    if per_token is not None and per_token["ms"] is not None:
        took = f"{per_token['ms']:,.2f} ms per token instead of {per_token['baseline_ms']:,.2f} ms"
    else:
        took = f"{row['ms']:,.2f} ms per page instead of {row['baseline_ms']:,.2f} ms"
    return (
        f"**{label}**: `{row['variant']}` is {times(row['ratio'])} faster than the baseline "
        f"({_interval(row)}): {took}{_limit_phrase(row, peak)}."
    )


def _no_best_sentence(label: str, rows: list[dict[str, Any]]) -> str:
    """A stage no gate-passed variant measurably speeds up, with the closest one."""
    closest = max(
        (r for r in rows if r["status"] == "passed" and r["ratio"] is not None),
        key=lambda r: r["ratio"],
        default=None,
    )
    sentence = f"**{label}**: no variant is measurably faster than the baseline"
    if closest is None:
        return sentence + "."
    ratio = times(closest["ratio"])
    return f"{sentence} (closest: `{closest['variant']}`, {ratio}, {_interval(closest)})."


def variant_findings(comparison: dict[str, Any] | None) -> list[str]:
    """What each optimisation buys, in words: the best gate-passed variant per stage, then
    the variants that failed their gate and the sweep points (different workloads)."""
    note = comparison_note(comparison)
    if note is not None:
        return [note]
    rows = comparison["rows"]
    by_key = {(r["variant"], r["stage"]): r for r in rows}
    variants = comparison["variants"]
    sentences = [
        "Each variant ran the baseline's pages (the baseline is this run's own settings, by "
        "default the released code path); speedup = baseline time / variant time."
    ]
    if not any(v["status"] == "passed" for v in variants):
        sentences.append("No optimisation passed the correctness check: none counts as faster.")
    else:
        for stage, label in VARIANT_STAGES.items():
            best = comparison["best"].get(stage)
            if stage not in comparison["stages"]:
                continue
            if best is None:
                sentences.append(_no_best_sentence(label, [r for r in rows if r["stage"] == stage]))
                continue
            per_token = by_key.get((best, "decode_per_token")) if stage == "decode" else None
            sentences.append(
                _best_sentence(label, by_key[(best, stage)], per_token, comparison["peak"])
            )
    for variant in variants:
        if variant["status"] != BASELINE and variant["records_ok"] == 0:
            sentences.append(
                f"`{variant['name']}` (`{switches_text(variant['switches'])}`) timed no page: "
                f"all {variant['records_error']} of its records failed (their reasons are in "
                f"`variants/{variant['name']}/runs/`)."
            )
            continue
        if variant["status"] == "failed":
            sentences.append(
                f"`{variant['name']}` (`{switches_text(variant['switches'])}`) failed the "
                f"correctness check ({gate_difference(variant['gate'])}), so its times are "
                "not counted as a speedup."
            )
        page = by_key.get((variant["name"], PAGE))
        if variant["status"] == "not_applicable" and page is not None and page["ms"]:
            sentences.append(
                f"`{variant['name']}` (`{switches_text(variant['switches'])}`) computes a "
                f"different workload, so it is not an optimisation: a page takes "
                f"{page['ms']:,.2f} ms against {page['baseline_ms']:,.2f} ms for the baseline "
                f"({times(page['ms'] / page['baseline_ms'])} the time)."
            )
    return sentences

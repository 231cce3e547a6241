"""The plain-language sentences of the summary, each built from findings
(`vlmprof.report.findings`) or from metrics.json's facts: the headline, cost centres,
utilisation, recommendations, reliability, categories, variants and how to reproduce."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from vlmprof.metrics.document import Counts, MetricsDocument
from vlmprof.metrics.roofline import NO_BYTES
from vlmprof.report import findings as f
from vlmprof.report.formatting import display_name, percent, times
from vlmprof.report.timed_busy import busy_basis
from vlmprof.report.timing import host_ms, timed
from vlmprof.report.variants import (
    did_not_fit_sentence,
    gap_note,
    gate_difference,
    gate_meaning,
    switches_text,
)
from vlmprof.variants.comparison import PAGE
from vlmprof.variants.paired import FASTER, MIN_PAGES, WITHIN_NOISE

REPRODUCE_COMMAND = "snakemake --cores 1 --resources gpu=1 --configfile run-config.yaml"
NO_END_TO_END_RATE = (
    "No end-to-end rate: the records predate the host-clock spans it is measured from"
)
_ROOF_WORDS = {"compute": "compute limit", "memory": "memory-bandwidth limit"}


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _device_words(cpu: bool) -> tuple[str, str]:
    """("GPU", "kernels") or ("processor", "operations")."""
    return ("processor", "operations") if cpu else ("GPU", "kernels")


# --- the run -----------------------------------------------------------------------------


def failed_phrase(counts: Counts) -> str:
    """Failures as pages and records ("5 of 16 pages failed (10 of 32 records)"), or that
    every record is ok."""
    if not counts.error:
        return f"all {counts.records} records ok"
    return (
        f"{counts.images_failed} of {counts.images} pages failed "
        f"({counts.error} of {counts.records} records)"
    )


def throughput_sentence(rates: f.Throughput) -> str:
    """The run's output tokens/s end to end, the host in the loop, with the GPU side and
    decode only beside it, each labelled."""
    device, _ = _device_words(rates.on_cpu)
    beside = []
    if rates.gpu_side is not None:
        beside.append(f"{rates.gpu_side:,.2f} output tokens/s on the {device} alone")
    if rates.decode is not None:
        beside.append(f"{rates.decode:,.2f} tokens/s in decode alone")
    aside = f"; {' and '.join(beside)}" if beside else ""
    if rates.end_to_end is None:
        return f"{NO_END_TO_END_RATE}{aside}."
    at_once = f", {rates.devices} devices at once" if rates.devices > 1 else ""
    return (
        f"End to end, the run generated {rates.end_to_end:,.2f} output tokens/s "
        f"({rates.pages_end_to_end:,.2f} pages/s, the host's loading and preprocessing "
        f"included{at_once}){aside}."
    )


def headline(metrics: MetricsDocument) -> str:
    """Two sentences: the run's output tokens/s end to end (the GPU side and decode only
    beside it), then time per page split into prefill (with vision) and decode, and the
    host's load and preprocessing before it."""
    aggregates, counts = metrics.aggregates, metrics.counts
    size = f"{counts.images} pages x {counts.repeats} repeats, {failed_phrase(counts)}"
    if not timed(metrics):
        return f"No page was timed: {size}. The engineering report lists why each one failed."
    env = metrics.environment
    device = env.gpu_name or env.cpu_model or env.device_used
    prefill, decode = aggregates.mean_ms("prefill"), aggregates.mean_ms("decode")
    tokens = aggregates.tokens.mean
    host = host_ms(metrics)
    before = (
        f", after {sum(host.values()):,.2f} ms on the host to load and preprocess it"
        if host
        else ""
    )
    return (
        f"On {device} ({env.device_used}): {throughput_sentence(f.throughput(metrics))} "
        f"One page takes {prefill + decode:,.2f} ms on average: prefill {prefill:,.2f} ms (of "
        f"which vision {aggregates.mean_ms('vision'):,.2f} ms) and decode {decode:,.2f} ms "
        f"for {tokens:g} tokens{before}; {size}."
    )


def cost_centre_table(centres: list[f.CostCentre]) -> pd.DataFrame:
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


def cost_centre_sentences(centres: list[f.CostCentre]) -> list[str]:
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


# --- utilisation -------------------------------------------------------------------------


def _peak_phrase(use: f.PeakUse, what: str) -> str:
    """ "12.3% of the compute the card offers (989 TFLOP/s) and ..." """
    unit = "TB/s" if use.kind == "mbu" else "TFLOP/s"
    if use.peak == "datasheet":
        source = "the configuration sets as peak" if use.configured else "the card offers"
        phrase = f"{percent(use.fraction)} of the {what} {source} ({use.peak_value:g} {unit})"
        if use.calibrated is not None:
            phrase += f" and {percent(use.calibrated)} of what was measured on it"
        return phrase
    return (
        f"{percent(use.fraction)} of the {what} measured on this machine "
        f"({use.peak_value:.3g} {unit}; {use.no_datasheet})"
    )


def _busy_phrase(timeline: f.Busy | None, cpu: bool) -> str:
    if timeline is None:
        return ""
    device, ops = _device_words(cpu)
    detail = f"the {device} is busy {percent(timeline.fraction)} of the time"
    if timeline.mean_kernel_us is not None:
        detail += f", with {ops} of {timeline.mean_kernel_us:.1f} us on average"
    how = busy_basis(timeline.dilation, timeline.capped)
    if timeline.launch_bound:
        return f", and is launch-bound per the timeline: {detail}; busy is {how}"
    return f"; it is not launch-bound per the timeline ({detail}); busy is {how}"


def utilisation_sentences(use: f.Utilisation) -> list[str]:
    """How well prefill and decode use the hardware, in words."""
    sentences = []
    if use.prefill is not None:
        busy = _busy_phrase(use.prefill_busy, use.on_cpu)
        sentences.append(f"Prefill uses {_peak_phrase(use.prefill, 'compute')}{busy}.")
        if use.vision is not None and use.llm_prefill is not None:
            sentences.append(
                f"Within prefill, vision reaches {percent(use.vision)} and LLM prefill "
                f"{percent(use.llm_prefill)} of that compute peak."
            )
    if use.decode is not None:
        busy = _busy_phrase(use.decode_busy, use.on_cpu)
        sentences.append(f"Decode moves {_peak_phrase(use.decode, 'memory bandwidth')}{busy}.")
    if not sentences:
        sentences.append("No utilisation figure: no ok record or no peak to divide by.")
    return sentences


# --- recommendations ---------------------------------------------------------------------


def _launch_bound(e: dict[str, Any]) -> str:
    device, ops = _device_words(e["on_cpu"])
    return (
        f"per the timeline the {device} is busy {percent(e['busy'].fraction)} of decode time "
        f"with {ops} of {e['busy'].mean_kernel_us:.1f} us on average (busy is "
        f"{busy_basis(e['busy'].dilation, e['busy'].capped)})"
    )


def _copies(e: dict[str, Any]) -> str:
    centre = e["centre"]
    return (
        f"copies take about {percent(centre.share)} of page time, mostly in {centre.stage} "
        f"(`{centre.lead_operator}`)"
    )


def _stage_names(stages: list[str]) -> str:
    return ", ".join(display_name(s) for s in stages)


# Each rule's evidence in words, from the numbers it fired on, and what to try.
_EVIDENCE: dict[str, Callable[[dict[str, Any]], str]] = {
    f.DECODE_BOUND: lambda e: (
        f"decode is {percent(e['decode_share'])} of page time and moves only "
        f"{percent(e['mbu'])} of the {e['peak']} memory bandwidth"
    ),
    f.DECODE_LAUNCH_BOUND: _launch_bound,
    f.SAM_DOMINATES: lambda e: (
        f"SAM is {percent(e['sam_of_vision'])} of vision time, and vision "
        f"{percent(e['vision_share'])} of page time"
    ),
    f.LLM_PREFILL_DOMINATES: lambda e: (
        f"the decoder's part is {percent(e['llm_of_prefill'])} of prefill time"
    ),
    f.PREFILL_COMPUTE_IDLE: lambda e: (
        f"prefill is {percent(e['prefill_share'])} of page time at {percent(e['mfu'])} of the "
        f"{e['peak']} compute peak"
    ),
    f.MOE_ONE_BY_ONE: lambda e: (
        f"MoE operators are {percent(e['moe'])} of {display_name(e['stage'])} time with "
        "model.experts_implementation: eager"
    ),
    f.COPIES_TOP_COST: _copies,
    f.NOT_REPEATABLE: lambda e: (
        f"{_stage_names(e['stages'])} vary by more than +/-{percent(e['tolerance'])} across "
        "repeats of a page"
    ),
    f.FAILED_PAGES: lambda e: f"{failed_phrase(e['counts'])}; the engineering report lists why",
    f.CPU_RUN: lambda e: "the timed runs ran on the CPU",
    f.NO_RULE_FIRED: lambda e: "no threshold of the recommendation rules was crossed",
}
ACTIONS: dict[str, str] = {
    f.DECODE_BOUND: "batch several pages per decode step, capture the decode step in CUDA "
    "graphs and use a fused MoE kernel (model.experts_implementation: grouped_mm), so each "
    "step reads the weights once for many tokens",
    f.DECODE_LAUNCH_BOUND: "cut the per-token launch overhead: CUDA graphs or torch.compile "
    "(mode='reduce-overhead') for the decode step, and fewer small ops per step",
    f.SAM_DOMINATES: "speed up SAM's attention (flash attention in bf16, torch.compile of the "
    "encoder), and where pages allow use fewer crops (max_crops) or a smaller mode: SAM's "
    "cost grows with the square of the view's tokens",
    f.LLM_PREFILL_DOMINATES: "shorten the prompt the decoder sees (fewer image tokens: mode, "
    "max_crops) and use fused attention for the long prefill",
    f.PREFILL_COMPUTE_IDLE: "run in bf16 on tensor cores, batch crops and pages into larger "
    "matmuls and use fused attention kernels",
    f.MOE_ONE_BY_ONE: "switch model.experts_implementation to grouped_mm (or batched_mm) so "
    "the routed experts run as one grouped matmul",
    f.COPIES_TOP_COST: "look for layout and dtype conversions in that stage (.contiguous(), "
    ".to(), cat, padding) and keep tensors in the layout the next kernel wants",
    f.NOT_REPEATABLE: "before comparing runs, use more warmup rounds and repeats on a quiet "
    "machine (and locked clocks on a GPU)",
    f.FAILED_PAGES: "fix or remove those pages; their time is missing from every figure",
    f.CPU_RUN: "rerun with device: cuda before sizing GPU work; CPU shares and bottlenecks "
    "differ from a GPU's",
    f.NO_RULE_FIRED: "nothing to change by these rules; see the engineering report for detail",
}


def evidence(found: f.Recommendation) -> str:
    """The numbers a recommendation fired on, in words."""
    return _EVIDENCE[found.rule](found.evidence)


def recommendation_sentences(found: list[f.Recommendation]) -> list[str]:
    """One sentence per recommendation: the rule, the evidence, then what to try."""
    return [f"**{_capitalised(r.rule)}**: {evidence(r)}. *Try*: {ACTIONS[r.rule]}." for r in found]


# --- reliability, categories, reproducing ------------------------------------------------


def reliability_sentence(metrics: MetricsDocument) -> str:
    """Whether repeats agree within tolerance and how many records failed."""
    rep, counts = metrics.repeatability, metrics.counts
    failed = "no failures" if not counts.error else failed_phrase(counts)
    if rep.passed is None:
        agreement = f"repeatability not judged ({rep.reason or 'no repeats'})"
    elif rep.passed:
        agreement = f"every stage repeats within +/-{percent(rep.tolerance)}"
    else:
        names = _stage_names(rep.failing_stages)
        agreement = f"{names} vary by more than +/-{percent(rep.tolerance)} across repeats"
    return f"Reliability: {agreement}; {failed}."


def category_sentence(gap: f.CategoryGap | None) -> str | None:
    """The widest gap between page categories as a sentence (None for none)."""
    if gap is None:
        return None
    return (
        f"Pages of category `{gap.slow}` take {times(gap.ratio)} as long as those of "
        f"`{gap.fast}` in {display_name(gap.stage)} ({gap.slow_ms:,.2f} ms against "
        f"{gap.fast_ms:,.2f} ms on average), more than the +/-{percent(gap.tolerance)} "
        "repeats of one page may differ by: the mix of pages moves the averages above."
    )


def reproduce_sentence(metrics: MetricsDocument) -> str:
    """How to rerun this run: the command, the config it needs and the hash to expect."""
    commit = metrics.environment.git_commit
    checkout = f"check out commit `{commit}`, " if commit else ""
    return (
        f"To reproduce: {checkout}save this run's configuration (the last section of the "
        f"engineering report) as `run-config.yaml` and run `{REPRODUCE_COMMAND}`; the new "
        f"run's metrics.json carries config hash `{metrics.config_hash[:12]}` when the "
        "configuration and resolved device match."
    )


# --- variants ----------------------------------------------------------------------------


def _stage_title(stage: str) -> str:
    """The word a reader knows a summary stage by ("Vision", "Whole page")."""
    return "Whole page" if stage == PAGE else _capitalised(display_name(stage))


def _interval(row: dict[str, Any]) -> str:
    """ "95% interval 1.02x to 1.15x" of a comparison row, or why it has none."""
    if row["ratio_low"] is None or row["ratio_high"] is None:
        return f"no interval from {row['pages']} pages: {MIN_PAGES} are needed"
    return f"95% interval {times(row['ratio_low'])} to {times(row['ratio_high'])}"


def _reading(row: dict[str, Any]) -> str:
    """Why a variant with an interval is not called faster: its verdict, and for "within
    noise" the smallest change this run could have called."""
    if row["ratio_low"] is None or row["verdict"] == FASTER:
        return ""
    if row["verdict"] == WITHIN_NOISE and row["noise_floor"] is not None:
        floor = percent(row["noise_floor"])
        return f"; within noise: this run could call only a change above {floor}"
    return f"; {row['verdict']}"


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


def _outcome_sentence(outcome: f.StageOutcome) -> str:
    """A stage's best variant (speedup, interval, time, distance to the limit), or that
    none is measurably faster, with the closest."""
    title = _stage_title(outcome.stage)
    row = outcome.best
    if row is None:
        sentence = f"**{title}**: no variant is measurably faster than the baseline"
        closest = outcome.closest
        if closest is None:
            return sentence + "."
        ratio = times(closest["ratio"])
        interval = _interval(closest) + _reading(closest)
        return f"{sentence} (closest: `{closest['variant']}`, {ratio}, {interval})."
    per_token = outcome.per_token
    if per_token is not None and per_token["ms"] is not None:
        took = f"{per_token['ms']:,.2f} ms per token instead of {per_token['baseline_ms']:,.2f} ms"
    else:
        took = f"{row['ms']:,.2f} ms per page instead of {row['baseline_ms']:,.2f} ms"
    return (
        f"**{title}**: `{row['variant']}` is {times(row['ratio'])} faster than the baseline "
        f"({_interval(row)}): {took}{_limit_phrase(row, outcome.peak)}."
    )


def furthest_sentence(furthest: f.FurthestStage) -> str:
    """Which part of a page is now furthest from its limit, so where optimisation pays off
    next."""
    row = furthest.row
    runner = "the baseline" if row["status"] == "baseline" else f"`{row['variant']}`"
    return (
        f"With each part of the page on its best variant, **{display_name(furthest.stage)}** "
        f"is now the furthest from its limit ({runner}{_limit_phrase(row, furthest.peak)}): "
        "that is where optimisation pays off next."
    )


def _caveat_sentence(caveat: f.VariantCaveat) -> str:
    """Why a variant's times are no speedup."""
    variant = caveat.variant
    named = f"`{variant['name']}` (`{switches_text(variant['switches'])}`)"
    if caveat.kind == f.NO_RECORDS:
        return (
            f"{named} timed no page: all {variant['records_error']} of its records failed "
            f"(their reasons are in `variants/{variant['name']}/runs/`)."
        )
    if caveat.kind == f.DID_NOT_FIT:
        return did_not_fit_sentence(named, caveat.page)
    if caveat.kind == f.FAILED_GATE:
        return (
            f"{named} failed the correctness check ({gate_difference(variant['gate'])}), so "
            "its times are not counted as a speedup."
        )
    page = caveat.page
    return (
        f"{named} computes a different workload, so it is not an optimisation: a page takes "
        f"{page['ms']:,.2f} ms against {page['baseline_ms']:,.2f} ms for the baseline "
        f"({times(page['ms'] / page['baseline_ms'])} the time)."
    )


# What the verdicts can say when the drift between runs was measured on fewer than 2 shards.
DRIFT_NOTES = {
    0: "No A/A control ran (`variant_control.enabled: false`), so the drift between runs was "
    "not measured and no variant is judged faster or slower.",
    1: "The drift between runs was measured on one shard: with one degree of freedom only "
    "large changes can be called (the noise floor in the report's variants table). "
    "`shards: 4`, each shard its own job, measures it four times and resolves a few percent.",
}


def variant_sentences(found: f.VariantFindings) -> list[str]:
    """What each optimisation buys, in words: the best gate-passed variant per stage, then
    the variants that timed nothing, failed their gate or are sweep points."""
    if found.gap is not None:
        return [gap_note(found.gap, found.how_to_add)]
    sentences = [
        "Each variant ran the baseline's pages (the baseline is this run's own settings, by "
        "default the released code path); speedup = baseline time / variant time."
    ]
    meaning = gate_meaning(found.gated)
    if meaning is not None:
        sentences.append(meaning)
    if not found.any_passed:
        sentences.append("No optimisation passed the correctness check: none counts as faster.")
    elif found.drift_shards < 2:
        sentences.append(DRIFT_NOTES[found.drift_shards])
    sentences += [_outcome_sentence(outcome) for outcome in found.stages]
    if found.furthest is not None:
        sentences.append(furthest_sentence(found.furthest))
    sentences += [_caveat_sentence(caveat) for caveat in found.caveats]
    return sentences

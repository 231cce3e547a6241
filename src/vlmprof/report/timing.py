"""The timing sections: per-stage statistics, stage shares, per page, per category, decode
latency and static batching's cost, from metrics.json and the run's tables as written.

Only regroupings are computed here: shares, the exclusive parts of a page (the vision
remainder no sub-stage timer covers) and unit changes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from vlmprof.metrics.document import MetricsDocument, Pipeline
from vlmprof.records import RunRecord
from vlmprof.report.formatting import MISSING, as_percent, percent
from vlmprof.stages import (
    EXCLUSIVE_STAGES,
    HOST_STAGES,
    STAGE_DEFINITIONS,
    STAGE_NAMES,
    STAGE_PARENTS,
    VISION_PARTS,
    label,
)

NOTHING_TIMED = "Nothing to show: every page failed (the Failures section lists why)."
# Time in vision that no sub-stage timer covers: vision - (sam + clip + projector).
VISION_REMAINDER = "vision remainder"
# Exclusive parts of a page, by display name: the vision sub-stages, the vision remainder,
# the decoder's part of prefill (prefill - vision) and decode.
PAGE_PARTS: tuple[str, ...] = (
    *map(label, VISION_PARTS),
    VISION_REMAINDER,
    label("llm_prefill"),
    label("decode"),
)
# The stage that holds each part's time in the operator pass: its own, and LLM prefill for
# the vision remainder, which has no timer of its own.
PART_STAGES: dict[str, str] = {label(s): s for s in EXCLUSIVE_STAGES} | {
    VISION_REMAINDER: "llm_prefill"
}
# Stages the per-category views compare: prefill, its two exclusive halves, and decode.
CATEGORY_STAGES: tuple[str, ...] = ("prefill", "vision", "llm_prefill", "decode")
_SPLIT_STAGES: tuple[str, ...] = ("prefill", "vision", *VISION_PARTS)


def stage_timing_table(stage_ms: pd.DataFrame) -> pd.DataFrame:
    """Per stage mean, std, CV (%), p50 and p90 (ms), with what each stage is and its nesting."""
    rows = []
    for stage in [s for s in STAGE_NAMES if s in stage_ms.index]:
        row = stage_ms.loc[stage]
        rows.append(
            {
                "stage": label(stage),
                "mean (ms)": row["mean (ms)"],
                "std (ms)": row["std (ms)"],
                "CV (%)": as_percent(row["cv"]),
                "p50 (ms)": row["p50 (ms)"],
                "p90 (ms)": row["p90 (ms)"],
                "n": int(row["n"]),
                "nested in": STAGE_PARENTS[stage] or MISSING,
                "definition": STAGE_DEFINITIONS[stage],
            }
        )
    return pd.DataFrame(rows)


def timed(metrics: MetricsDocument) -> bool:
    """Whether any ok record timed the run's stages (False when every page failed)."""
    return {"prefill", "decode"} <= set(metrics.aggregates.stage_ms)


def stage_mean(metrics: MetricsDocument, stage: str) -> float:
    """Mean time (ms) of `stage` over the ok records; a KeyError naming it when none timed it."""
    mean = metrics.aggregates.mean_ms(stage)
    if mean is None:
        raise KeyError(f"metrics.json: aggregates.stage_ms has no {stage!r}; no ok record timed it")
    return float(mean)


def _remainder(vision: Any, parts: Any) -> Any:
    """vision - (sam + clip + projector), with rounding noise of a sum-defined vision as 0."""
    rest = vision - parts
    noise = abs(rest) <= 1e-9 * abs(vision)
    if isinstance(rest, pd.Series):
        return rest.mask(noise, 0.0)
    return 0.0 if noise else rest


def _with_shares(parts: pd.Series) -> pd.DataFrame:
    """Parts of a whole: mean (ms) and share of their sum (%)."""
    return pd.DataFrame({"mean (ms)": parts, "share (%)": 100.0 * parts / parts.sum()})


def run_split(metrics: MetricsDocument) -> pd.DataFrame:
    """A page end to end: the host's image load and preprocessing (where the run timed
    them), prefill and decode; mean time per page (ms) and share of their sum (%)."""
    device = {label(s): stage_mean(metrics, s) for s in ("prefill", "decode")}
    return _with_shares(pd.Series({**host_ms(metrics), **device}))


def _exclusive_prefill_parts(ms: dict[str, Any]) -> dict[str, Any]:
    """`PREFILL_PARTS` from stage times (scalars or per-page Series alike): the parts that
    add up to prefill without overlap. A vision part the model does not have (no SAM in a
    transformers VLM) is absent from `ms` and from the parts."""
    present = [part for part in VISION_PARTS if part in ms]
    parts = {label(part): ms[part] for part in present}
    parts[VISION_REMAINDER] = _remainder(ms["vision"], sum(ms[part] for part in present))
    parts[label("llm_prefill")] = ms["prefill"] - ms["vision"]
    return parts


def prefill_split(metrics: MetricsDocument) -> pd.DataFrame:
    """Prefill cut into exclusive parts: SAM, CLIP, projector, the vision remainder
    (vision - SAM - CLIP - projector, time in vision no sub-stage timer covers) and LLM
    prefill (prefill - vision); mean (ms) and share of prefill (%)."""
    stages = metrics.aggregates.stage_ms
    mean = {
        s: stage_mean(metrics, s) for s in _SPLIT_STAGES if s in stages or s not in VISION_PARTS
    }
    parts = pd.Series(_exclusive_prefill_parts(mean))
    return pd.DataFrame(
        {"mean (ms)": parts, "share of prefill (%)": 100.0 * parts / mean["prefill"]}
    )


def page_split(metrics: MetricsDocument) -> pd.DataFrame:
    """Exclusive parts of a page's prefill + decode time: mean (ms) and share (%)."""
    parts = prefill_split(metrics)["mean (ms)"]
    parts[label("decode")] = stage_mean(metrics, "decode")
    return _with_shares(parts)


def host_ms(metrics: MetricsDocument) -> dict[str, float]:
    """The host's part of a page where the run timed it: mean image load and preprocess
    (ms), by display name, in the order they run."""
    stages = metrics.aggregates.stage_ms
    return {label(s): stage_mean(metrics, s) for s in HOST_STAGES if s in stages}


def end_to_end_split(metrics: MetricsDocument) -> pd.DataFrame:
    """A page end to end: the host's load and preprocess, then the exclusive parts of
    prefill and decode; mean (ms) and share of their sum (%)."""
    host = pd.Series(host_ms(metrics), dtype=float)
    return _with_shares(pd.concat([host, page_split(metrics)["mean (ms)"]]))


def per_image_parts(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per page, the mean time (ms) of each exclusive part of prefill and of decode."""
    ms = {
        s: per_image[f"{s} (ms)"]
        for s in _SPLIT_STAGES
        if s not in VISION_PARTS or f"{s} (ms)" in per_image.columns
    }
    parts = pd.DataFrame(
        {f"{name} (ms)": values for name, values in _exclusive_prefill_parts(ms).items()}
    )
    parts[f"{label('decode')} (ms)"] = per_image["decode (ms)"]
    if "category" in per_image.columns:
        parts.insert(0, "category", per_image["category"])
    return parts


def category_table(per_category: pd.DataFrame) -> pd.DataFrame:
    """Per category (tables/per_category.csv): ok and failed pages, then the mean (ms) and
    CV (%) of each stage of `CATEGORY_STAGES` (empty where no ok record of it measured one)."""
    table = per_category.groupby("category")[["ok pages", "failed pages"]].first()
    for stage in CATEGORY_STAGES:
        rows = per_category[per_category["stage"] == stage].set_index("category")
        if len(rows):
            name = label(stage)
            table[f"{name} (ms)"] = rows["mean (ms)"]
            table[f"{name} CV (%)"] = 100.0 * rows["cv"]
    return table


def decode_latency_table(metrics: MetricsDocument) -> pd.DataFrame:
    """TTFT and time per output token: mean, p50, p90, p99 (ms) and samples."""
    stages = metrics.aggregates.stage_ms
    rows = []
    for stage in ("ttft", "decode_per_token"):
        if stage in stages:
            s = stages[stage]
            rows.append(
                {
                    "latency": label(stage),
                    "mean (ms)": s.mean,
                    "p50 (ms)": s.p50,
                    "p90 (ms)": s.p90,
                    "p99 (ms)": s.p99,
                    "samples": s.n,
                }
            )
    return pd.DataFrame(rows)


def decode_steps(records: list[RunRecord]) -> pd.DataFrame:
    """Every decode step of the ok records: image, repeat, step index and its time (ms)."""
    rows = [
        {"image_id": r.image_id, "repeat": r.repeat, "step": i + 1, "step (ms)": ms}
        for r in records
        if r.status == "ok"
        for i, ms in enumerate(r.decode_step_ms)
    ]
    return pd.DataFrame(rows, columns=["image_id", "repeat", "step", "step (ms)"])


def ttft_values(records: list[RunRecord]) -> pd.Series:
    """TTFT (ms) of every ok record."""
    values = [r.ttft_ms for r in records if r.status == "ok" and r.ttft_ms]
    return pd.Series(values, name="TTFT (ms)", dtype=float)


def decode_slots_table(metrics: MetricsDocument) -> pd.DataFrame:
    """Static batching's cost, one figure a row: how the pages' lengths were set and their
    mean, the decode slot-steps the batches ran, the idle ones (pages already ended) and
    their share (%), and decode tokens/s useful and over every slot-step. Empty for a run
    from before slot-steps were counted."""
    slots = metrics.decode_slots
    if slots is None:
        return pd.DataFrame(columns=["value"], index=pd.Index([], name="figure"))
    mean_length = None if slots.target_tokens is None else slots.target_tokens.mean
    rows = {
        "pages' lengths": slots.output_length,
        "mean length (tokens)": mean_length,
        "decode slot-steps": slots.slot_steps,
        "idle slot-steps (page ended)": slots.idle_slot_steps,
        "idle share (%)": as_percent(slots.idle_share),
        "decode tokens/s, useful": slots.useful_tokens_per_s,
        "decode tokens/s, every slot-step": slots.slot_steps_per_s,
    }
    return pd.DataFrame({"value": rows.values()}, index=pd.Index(rows, name="figure"))


BATCH_TIMELINE_COLUMNS: tuple[str, ...] = ("lane", "span", "start (ms)", "end (ms)")
# The lanes of a batch timeline, top to bottom: the host's two parts of a page, the timing
# pass's wait for it, and the GPU's run of the batch.
LOAD_LANE, PREPROCESS_LANE = "host: load", "host: preprocess"
WAIT_LANE, GPU_LANE = "timing pass: waits for the page", "GPU: the batch"


def batch_timeline(records: list[RunRecord]) -> pd.DataFrame:
    """One batch's host and GPU sides on the host clock, in ms from its first span: each
    page's load and preprocessing (apart, where the record timed its load), the timing
    pass's wait for each page, and the batch's prefill and decode (the run's window split by
    its stage times).

    The batch is the last of the largest size whose first repeat kept its spans (a steady
    batch, past the first's warm-up); empty for records from before spans were kept.
    """
    spans = [
        r for r in records if r.status == "ok" and r.repeat == 0 and r.run_span_s and r.host_span_s
    ]
    if not spans:
        return pd.DataFrame(columns=list(BATCH_TIMELINE_COLUMNS))
    largest = max(r.batch_size for r in spans)
    last = max((r for r in spans if r.batch_size == largest), key=_run_start)
    batch = [r for r in spans if r.run_span_s == last.run_span_s]
    rows = []
    for record in batch:
        page, (began, ended) = record.image_id, record.host_span_s
        loaded = began if record.load_ms is None else began + record.load_ms / 1000.0
        rows.append((LOAD_LANE, page, began, loaded))
        rows.append((PREPROCESS_LANE, page, loaded, ended))
        if record.wait_span_s:
            rows.append((WAIT_LANE, page, *record.wait_span_s))
    run_start, run_end = last.run_span_s
    prefill_end = run_start + last.prefill_ms / 1000.0
    rows.append((GPU_LANE, label("prefill"), run_start, prefill_end))
    rows.append((GPU_LANE, label("decode"), run_end - last.decode_ms / 1000.0, run_end))
    frame = pd.DataFrame(rows, columns=["lane", "span", "start", "end"])
    origin = frame["start"].min()
    frame["start (ms)"] = (frame["start"] - origin) * 1000.0
    frame["end (ms)"] = (frame["end"] - origin) * 1000.0
    return frame[list(BATCH_TIMELINE_COLUMNS)]


def _run_start(record: RunRecord) -> float:
    return float(record.run_span_s[0])


def binding_sentence(pipeline: Pipeline | None) -> str:
    """Which side binds the run, host or GPU, in one sentence with the figures that say so:
    how long the GPU waited for its inputs against its own time, and the host's work."""
    if pipeline is None or not pipeline.batches:
        reason = "its metrics.json predates them" if pipeline is None else pipeline.reason
        return f"No figure says which side binds this run: {reason}."
    ahead = f"{pipeline.workers} worker processes" if pipeline.workers else "the timing process"
    per_batch = (pipeline.pages or 0) / pipeline.batches
    pages = f"{per_batch:.3g} page" + ("" if per_batch == 1 else "s")
    text = (
        f"**{pipeline.binding}-bound**: the GPU waited {percent(pipeline.wait_share)} of "
        f"the time end to end for its inputs ({pipeline.input_wait_ms_per_batch:,.0f} ms a "
        f"batch of {pages}, against {pipeline.gpu_ms_per_batch:,.0f} ms of GPU "
        f"time), so end to end ran at {percent(pipeline.end_to_end_share)} of the GPU "
        f"side's rate; the host spent {pipeline.host_busy_ms_per_page:,.0f} ms loading and "
        f"preprocessing each page in {ahead}, {pipeline.host_per_gpu:.2f}x the GPU's time "
        "per process."
    )
    if pipeline.binding == "GPU" and pipeline.host_per_gpu > 1:
        text += (
            " Above 1, the host kept up only because it also ran during each batch's untimed "
            "reference generation: a loop without it would be host-bound."
        )
    return text

"""Model FLOP utilisation (MFU) and memory bandwidth utilisation (MBU) per stage.

Work comes from the analytic formulas of `vlmprof.flops.analytic` at each record's own shapes
(mode, crops, prefill length, tokens), or, for a model without formulas, from the work
counted over the page's own run that its record carries; times from the record. Vision
runs inside prefill, so the model-level time is prefill + decode wall time and vision time
is never added to it. A page of a batch counts its share: the batch's times over its pages,
the weights the batch reads once over its pages (in decode, the experts a batch's tokens
are expected to hit). The headline of every aggregate is summed work over summed time
(long runs weigh more); the mean of per-record ratios is reported beside it.

Each stage has two byte figures (`vlmprof.metrics.roofline`): the necessary bytes, which
MBU divides by, from the formulas (or, without them, the counted matmul-class traffic), and
the bytes as implemented, every op's traffic counted over the page's own untimed run, which
records carry in `counted_work` (None for records from before it was counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import pandas as pd

from vlmprof.flops.analytic import (
    ModelDims,
    StageCost,
    bytes_per_element,
    decode_step_cost,
    decode_total_cost,
    decode_weight_share,
    llm_prefill_cost,
    vision_cost,
)
from vlmprof.flops.work import WORK_KEYS, decode_work
from vlmprof.metrics.aggregate import batch_size, llm_prefill_ms, ok_records, page_share
from vlmprof.metrics.roofline import (
    BYTES_AS_IMPLEMENTED,
    BYTES_NECESSARY,
    PEAK_COLUMNS,
    decode_step_roofline,
    page_roofline,
    stage_roofline,
)
from vlmprof.stages import VISION_PARTS, record_field

CONTEXT_MODES: tuple[str, ...] = ("auto", "max", "fixed")
MFU_STAGES: tuple[str, ...] = ("vision", "llm_prefill", "prefill", "decode", "model")
MBU_STAGES: tuple[str, ...] = ("prefill", "decode")
# Stages whose FLOPs and bytes are counted at each record's shapes, on the roofline.
ROOFLINE_STAGES: tuple[str, ...] = (*VISION_PARTS, "vision", "llm_prefill", "prefill", "decode")
HEADLINE = (
    "aggregate MFU/MBU = summed FLOPs (bytes) over summed wall time of the ok records, "
    "divided by the peak; *_mean_of_records is the mean of per-record ratios"
)
BATCHING = (
    "a page of a batch of B counts its share: the batch's times over B, the weights the batch "
    "reads once over B; in decode the batch's step reads the experts its B tokens are expected "
    "to hit, E (1 - (1 - k/E)^B) per MoE layer (an assumption: random weights route close to "
    "uniformly, trained routers favour some experts)"
)
_REQUIRED = ("mode", "n_crops", "prefill_len", "tokens", "prefill_ms", "decode_ms")
# The two byte columns of the per-record table, after the stage's name.
NECESSARY, AS_IMPLEMENTED = "bytes necessary", "bytes as implemented"
# A stage's work in one record: FLOPs, necessary bytes, bytes as implemented (None: not counted).
Work = tuple[float, float, float | None]


def check_context_mode(context_len_mode: str, context_len_fixed: int | None) -> None:
    """Raise a ValueError naming the config key when the decode context setting is unusable."""
    if context_len_mode not in CONTEXT_MODES:
        raise ValueError(
            f"context_len_mode: unknown mode {context_len_mode!r}; allowed: "
            + ", ".join(CONTEXT_MODES)
        )
    if context_len_mode == "fixed" and context_len_fixed is None:
        raise ValueError(
            "context_len_fixed: required when context_len_mode is 'fixed'; set it to the "
            "number of cached positions every decode step should attend over"
        )
    if context_len_fixed is not None and context_len_fixed < 1:
        raise ValueError(f"context_len_fixed: must be at least 1, got {context_len_fixed}")


def decode_cost(
    dims: ModelDims,
    prefill_len: int,
    tokens: int,
    bytes_per_el: int,
    context_len_mode: str,
    context_len_fixed: int | None = None,
) -> StageCost:
    """Cost of the tokens - 1 decode steps of one record under a context-length mode.

    auto: step j attends over prefill_len + j positions (the real work); max: every step
    over the model's max_positions; fixed: every step over `context_len_fixed`.
    """
    if context_len_mode == "auto":
        return _cached_decode_total(dims, prefill_len, tokens, bytes_per_el)
    context = dims.decoder.max_positions if context_len_mode == "max" else context_len_fixed
    return decode_step_cost(dims, context, bytes_per_el).scaled(max(tokens - 1, 0))


@lru_cache(maxsize=4096)
def _cached_decode_total(
    dims: ModelDims, prefill_len: int, tokens: int, bytes_per_el: int
) -> StageCost:
    """decode_total_cost, memoised: repeats of one image share prefill length and tokens."""
    return decode_total_cost(dims, prefill_len, tokens, bytes_per_el)


def _counted(record: dict[str, Any]) -> dict[str, Any]:
    """The work counted over the page's own run (`counted_work`), which a record of a model
    without formulas must carry."""
    counted = record.get("counted_work")
    if not counted:
        raise ValueError(
            f"run record {record.get('run_id')!r} (image {record.get('image_id')!r}): its "
            "model has no FLOP formulas and the record has no counted_work; rerun its "
            "profiling shard"
        )
    return counted


def _as_implemented(counted: Mapping[str, float] | None, weight_share: float) -> float | None:
    """A stage's counted bytes as implemented, with `weight_share` of its weight reads the
    page's own; None where the record carries no such count (records from before it)."""
    if not counted or "bytes_as_implemented" not in counted:
        return None
    weights = counted["weight_bytes_as_implemented"]
    return counted["bytes_as_implemented"] - weights * (1 - weight_share)


def _plus(first: float | None, second: float | None) -> float | None:
    return None if first is None or second is None else first + second


def _prefill_work(
    record: dict[str, Any], dims: ModelDims | None, bytes_per_el: int
) -> dict[str, Work]:
    """FLOPs, necessary bytes and bytes as implemented of each vision part, vision and
    llm_prefill of one record (a page of a batch counts its share of the weights the batch
    reads once): FLOPs and necessary bytes from the formulas at its shapes, or, where `dims`
    is None, from the work counted over its run (matmul-class bytes; a stage its model does
    not have, SAM say, did no work); bytes as implemented as counted over its run."""
    share = page_share(1.0, batch_size(record))
    stages = (*VISION_PARTS, "vision", "llm_prefill")
    if dims is None:
        counted = _counted(record)
        none = dict.fromkeys(WORK_KEYS, 0.0)
        return {
            stage: (
                counted.get(stage, none)["flops"],
                counted.get(stage, none)["bytes"],
                _as_implemented(counted.get(stage, none), share),
            )
            for stage in stages
        }
    counted = record.get("counted_work") or {}
    costs = vision_cost(dims, record["mode"], record["n_crops"], bytes_per_el)
    costs["llm_prefill"] = llm_prefill_cost(dims, record["prefill_len"], bytes_per_el)
    return {
        stage: (
            costs[stage].flops,
            _page_bytes(costs[stage], share),
            _as_implemented(counted.get(stage), share),
        )
        for stage in stages
    }


def _decode_work(
    record: dict[str, Any],
    dims: ModelDims | None,
    bytes_per_el: int,
    context_len_mode: str,
    context_len_fixed: int | None,
) -> Work:
    """FLOPs, necessary bytes and bytes as implemented of one record's decode steps under a
    context-length mode: FLOPs and necessary bytes from the formulas (the experts its batch
    is expected to hit), or from the two counted steps where `dims` is None (max needs the
    model's longest context, which only formulas state); bytes as implemented from the two
    counted steps."""
    if dims is None and context_len_mode == "max":
        raise ValueError(
            "metrics.context_len_mode: max needs the model's longest context, which only "
            "models with formulas state; use auto or fixed"
        )
    contexts = {
        "auto": None,
        "fixed": context_len_fixed,
        "max": dims.decoder.max_positions if dims is not None else None,
    }
    counted = _counted(record) if dims is None else record.get("counted_work")
    work = {}
    if counted:
        context = contexts[context_len_mode]
        work = decode_work(counted, record["prefill_len"], record["tokens"], context)
    if dims is None:
        return work["flops"], work["bytes"], _as_implemented(work, 1.0)
    decode = decode_cost(
        dims,
        record["prefill_len"],
        record["tokens"],
        bytes_per_el,
        context_len_mode,
        context_len_fixed,
    )
    share = decode_weight_share(dims, batch_size(record))
    return decode.flops, _page_bytes(decode, share), _as_implemented(work, share)


def _stage_columns(stage: str, work: Work, ms: float | None) -> dict[str, Any]:
    """The per-record columns of one stage: FLOPs, both byte figures and time."""
    flops, necessary, implemented = work
    return {
        f"{stage} flops": flops,
        f"{stage} {NECESSARY}": necessary,
        f"{stage} {AS_IMPLEMENTED}": implemented,
        f"{stage} (ms)": ms,
    }


def _record_row(
    record: dict[str, Any],
    dims: ModelDims | None,
    bytes_per_el: int,
    context_len_mode: str,
    context_len_fixed: int | None,
) -> dict[str, Any]:
    """Work and time of each stage of one ok record (times in ms; None where unmeasured):
    the work analytic from `dims`, or counted over the run where the model has none."""
    missing = [key for key in _REQUIRED if record.get(key) is None]
    if missing:
        raise ValueError(
            f"run record {record.get('run_id')!r} (image {record.get('image_id')!r}): ok "
            f"but missing {', '.join(missing)}; rerun its profiling shard"
        )
    work = _prefill_work(record, dims, bytes_per_el)
    decode = _decode_work(record, dims, bytes_per_el, context_len_mode, context_len_fixed)
    batch = batch_size(record)
    prefill_ms = page_share(record["prefill_ms"], batch)
    decode_ms = page_share(record["decode_ms"], batch)
    vision, llm = work["vision"], work["llm_prefill"]
    prefill = (vision[0] + llm[0], vision[1] + llm[1], _plus(vision[2], llm[2]))
    row = {
        "image_id": record["image_id"],
        "repeat": record.get("repeat"),
        "mode": record["mode"],
        "n_crops": record["n_crops"],
        "prefill_len": record["prefill_len"],
        "tokens": record["tokens"],
        "decode_steps": max(record["tokens"] - 1, 0),
        "batch_size": batch,
    }
    for part in VISION_PARTS:
        row |= _stage_columns(part, work[part], page_share(record.get(record_field(part)), batch))
    row |= _stage_columns("vision", vision, page_share(record.get("vision_ms"), batch))
    row |= _stage_columns("llm_prefill", llm, page_share(llm_prefill_ms(record), batch))
    row |= _stage_columns("prefill", prefill, prefill_ms)
    row |= _stage_columns("decode", decode, decode_ms)
    row |= {"model flops": prefill[0] + decode[0], "model (ms)": prefill_ms + decode_ms}
    return row


def _page_bytes(cost: StageCost, weight_share: float) -> float:
    """Necessary bytes of one page when `weight_share` of the stage's weight reads are its own."""
    return cost.necessary_bytes - cost.weight_bytes * (1 - weight_share)


def _peak_values(peaks: dict[str, Any], key: str) -> dict[str, float | None]:
    """The two denominators of one quantity ("tflops" or "tbps"), by peak column."""
    return {"datasheet": peaks["reference"][key], "calibrated": peaks["calibrated"][key]}


def _timed(df: pd.DataFrame, stage: str) -> pd.DataFrame:
    """Rows where the stage has a positive measured time."""
    ms = pd.to_numeric(df[f"{stage} (ms)"], errors="coerce")
    return df[ms.notna() & (ms > 0)]


def _rate_summary(
    amount: pd.Series, ms: pd.Series, peaks_per_s: dict[str, float | None], unit: str
) -> dict[str, Any]:
    """Summed amount over summed time, as a fraction of each peak, and its per-record mean.

    `unit` names the amount ("flops" or "bytes_necessary"); peaks are in the same unit per
    second.
    """
    rate_name = "achieved_tflops" if unit == "flops" else "achieved_tbps"
    if amount.empty:
        return dict.fromkeys(PEAK_COLUMNS) | {
            f"{unit}_per_run": None,
            f"{unit}_total": None,
            rate_name: None,
            "records": 0,
            "reason": "no ok record measured this stage",
        }
    seconds = ms.astype(float) / 1000.0
    rate = float(amount.sum()) / float(seconds.sum())
    per_record = amount.astype(float) / seconds
    summary: dict[str, Any] = {}
    for column, peak in peaks_per_s.items():
        summary[column] = rate / peak if peak else None
        summary[f"{column}_mean_of_records"] = float((per_record / peak).mean()) if peak else None
    return summary | {
        f"{unit}_per_run": float(amount.mean()),
        rate_name: rate / 1e12,
        f"{unit}_total": float(amount.sum()),
        "time_ms_total": float(ms.sum()),
        "records": len(amount),
    }


def _stage_mfu(df: pd.DataFrame, stage: str, tflops: dict[str, float | None]) -> dict[str, Any]:
    """MFU of one stage over the records that timed it."""
    timed = _timed(df, stage)
    peaks_per_s = {k: v * 1e12 if v else None for k, v in tflops.items()}
    return _rate_summary(timed[f"{stage} flops"], timed[f"{stage} (ms)"], peaks_per_s, "flops")


def _complete_sum(values: pd.Series) -> float | None:
    """The sum of `values`, or None when any is missing (a total over part of the records
    would not compare with one over all of them)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return None if numbers.empty or numbers.isna().any() else float(numbers.sum())


def _stage_mbu(df: pd.DataFrame, stage: str, tbps: dict[str, float | None]) -> dict[str, Any]:
    """MBU of one stage over the records that timed it (of its necessary bytes), with its
    bytes as implemented beside them."""
    timed = _timed(df, stage)
    peaks_per_s = {k: v * 1e12 if v else None for k, v in tbps.items()}
    necessary, ms = timed[f"{stage} {NECESSARY}"], timed[f"{stage} (ms)"]
    implemented = _complete_sum(timed[f"{stage} {AS_IMPLEMENTED}"])
    return _rate_summary(necessary, ms, peaks_per_s, "bytes_necessary") | {
        "bytes_as_implemented_total": implemented,
        "bytes_as_implemented_per_run": None if implemented is None else implemented / len(timed),
    }


def _decode_roofline(df: pd.DataFrame, peaks: dict[str, Any]) -> dict[str, Any]:
    """Bytes one decode step moves (necessary and as implemented) and the step time the
    necessary bytes allow at each peak."""
    timed = _timed(df, "decode")
    return decode_step_roofline(
        float(timed[f"decode {NECESSARY}"].sum()),
        float(timed["decode (ms)"].sum()),
        float(timed["decode_steps"].sum()),
        peaks,
        _complete_sum(timed[f"decode {AS_IMPLEMENTED}"]),
    )


def _decode_by_mode(
    records: list[dict[str, Any]],
    df: pd.DataFrame,
    dims: ModelDims | None,
    bytes_per_el: int,
    context_len_fixed: int | None,
    tflops: dict[str, float | None],
) -> dict[str, Any]:
    """Decode MFU under every context-length mode the model's work can be given in (max needs
    formulas), for what-if comparison."""
    modes = ["auto"] + (["max"] if dims is not None else [])
    modes += ["fixed"] if context_len_fixed is not None else []
    by_mode = {}
    for mode in modes:
        flops = [_decode_work(r, dims, bytes_per_el, mode, context_len_fixed)[0] for r in records]
        by_mode[mode] = _stage_mfu(df.assign(**{"decode flops": flops}), "decode", tflops)
    return by_mode


def _peak_labels(peaks: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """What each peak column divides by and where it came from."""
    reference, calibrated = peaks["reference"], peaks["calibrated"]
    return {
        "datasheet": {
            key: reference[key],
            "label": reference["label"],
            "reason": reference["reason"],
        },
        "calibrated": {
            key: calibrated[key],
            "label": calibrated["label"],
            "reason": calibrated["reason"],
        },
    }


def _with_record_ratios(
    df: pd.DataFrame, tflops: dict[str, float | None], tbps: dict[str, float | None]
) -> pd.DataFrame:
    """Per-record MFU and MBU columns next to the work and time columns."""
    df = df.copy()
    for stage in MFU_STAGES:
        seconds = pd.to_numeric(df[f"{stage} (ms)"], errors="coerce") / 1000.0
        for column, peak in tflops.items():
            df[f"{stage} mfu ({column})"] = (
                df[f"{stage} flops"] / seconds / (peak * 1e12) if peak else None
            )
    for stage in MBU_STAGES:
        seconds = df[f"{stage} (ms)"] / 1000.0
        for column, peak in tbps.items():
            df[f"{stage} mbu ({column})"] = (
                df[f"{stage} {NECESSARY}"] / seconds / (peak * 1e12) if peak else None
            )
    return df


def utilisation(
    records: list[dict[str, Any]],
    dims: ModelDims | None,
    peaks: dict[str, Any],
    dtype: str,
    context_len_mode: str = "auto",
    context_len_fixed: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    """MFU and MBU of the ok records against the reference and calibrated peaks.

    `peaks` is `resolve_peaks`' output; `dims` None takes each record's counted work (a
    model without formulas). Returns (mfu, mbu, per-record table). Stages: vision,
    llm_prefill (= prefill - vision), prefill, decode, and model (prefill + decode FLOPs
    over prefill + decode wall time).
    """
    check_context_mode(context_len_mode, context_len_fixed)
    bytes_per_el = bytes_per_element(dtype)
    good = ok_records(records)
    rows = [_record_row(r, dims, bytes_per_el, context_len_mode, context_len_fixed) for r in good]
    df = pd.DataFrame(rows)
    tflops, tbps = _peak_values(peaks, "tflops"), _peak_values(peaks, "tbps")
    if df.empty:
        reason = "no ok records"
        return (
            {"context_len_mode": context_len_mode, "reason": reason},
            {"reason": reason},
            df,
        )
    mfu = {
        "context_len_mode": context_len_mode,
        "context_len_fixed": context_len_fixed,
        "headline": HEADLINE,
        "peaks": _peak_labels(peaks, "tflops"),
        "model_level": _stage_mfu(df, "model", tflops),
        "per_stage": {stage: _stage_mfu(df, stage, tflops) for stage in MFU_STAGES[:-1]},
        "by_context_mode": _decode_by_mode(good, df, dims, bytes_per_el, context_len_fixed, tflops),
    }
    mbu = {
        "context_len_mode": context_len_mode,
        "headline": HEADLINE,
        "bytes": {"necessary": BYTES_NECESSARY, "as_implemented": BYTES_AS_IMPLEMENTED},
        "peaks": _peak_labels(peaks, "tbps"),
        "per_stage": {stage: _stage_mbu(df, stage, tbps) for stage in MBU_STAGES},
        "decode_roofline": _decode_roofline(df, peaks),
    }
    if int(df["batch_size"].max()) > 1:
        mfu["batching"] = mbu["batching"] = BATCHING
    return mfu, mbu, _with_record_ratios(df, tflops, tbps)


def roofline_section(per_record: pd.DataFrame, peaks: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's `roofline`: each stage of `ROOFLINE_STAGES` over the ok records that
    timed it (`stage_roofline`) and the page, prefill + decode (`page_roofline`).

    `per_record` is `utilisation`'s per-record table; `peaks` is `resolve_peaks`' output.
    """
    if per_record.empty:
        return {"reason": "no ok records"}
    per_stage = {}
    for stage in ROOFLINE_STAGES:
        timed = _timed(per_record, stage)
        if len(timed):
            per_stage[stage] = stage_roofline(
                float(timed[f"{stage} flops"].sum()),
                float(timed[f"{stage} {NECESSARY}"].sum()),
                float(timed[f"{stage} (ms)"].sum()),
                len(timed),
                peaks,
                _complete_sum(timed[f"{stage} {AS_IMPLEMENTED}"]),
            )
    section: dict[str, Any] = {
        "bytes": {"necessary": BYTES_NECESSARY, "as_implemented": BYTES_AS_IMPLEMENTED},
        "per_stage": per_stage,
    }
    page = _timed(per_record, "model")
    if len(page) and {"prefill", "decode"} <= set(per_stage):
        section["model_level"] = page_roofline(
            per_stage["prefill"],
            per_stage["decode"],
            float(page["model (ms)"].sum()),
            len(page),
        )
    return section

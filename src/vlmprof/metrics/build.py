"""Assemble metrics.json and the metric tables of one run from its records and context.

One place decides what a run publishes: timing aggregates, counts and failures,
repeatability, where the work comes from, MFU/MBU, each stage's roofline bound, the peaks
used, static compute, environment, inputs, config, the operator pass's timeline against the
timing pass and the assumptions a reader needs to interpret the numbers. The document is
the typed `vlmprof.metrics.document.MetricsDocument`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlmprof.atomic import atomic_open
from vlmprof.flops.analytic import ModelDims
from vlmprof.flops.work import WorkSource
from vlmprof.metrics.aggregate import (
    UNCATEGORISED,
    aggregate_records,
    per_category_table,
    per_image_table,
    stage_table,
)
from vlmprof.metrics.cost import cost_section
from vlmprof.metrics.decode_slots import decode_slots
from vlmprof.metrics.dilation import against_timing_pass
from vlmprof.metrics.document import MetricsDocument, Work
from vlmprof.metrics.environment import shard_environment
from vlmprof.metrics.host import host_section
from vlmprof.metrics.memory import memory_section
from vlmprof.metrics.pipeline import pipeline_section
from vlmprof.metrics.telemetry import telemetry_section
from vlmprof.metrics.utilisation import (
    HEADLINE,
    MBU_STAGES,
    MFU_STAGES,
    roofline_section,
    utilisation,
)
from vlmprof.provenance import config_hash
from vlmprof.records import read_records
from vlmprof.typed_json import to_plain

INPUT_COLUMNS: tuple[str, ...] = ("image_id", "category", "width", "height", "sha256")
RECORD_FACTS: tuple[str, ...] = ("mode", "n_crops", "image_tokens", "prefill_len")
_CONTEXT_SENTENCES = {
    "auto": "Decode FLOPs follow each step's real context: step j attends over "
    "prefill_len + j cached positions.",
    "max": "Decode FLOPs are a what-if: every step attends over the model's full window "
    "({max_positions} positions), which overstates the real work.",
    "fixed": "Decode FLOPs are a what-if: every step attends over {fixed} positions.",
}


def _json_safe(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def input_rows(inputs: pd.DataFrame, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifest rows of the profiled images with the view facts their records report."""
    facts: dict[str, dict[str, Any]] = {}
    for record in records:
        known = facts.setdefault(record["image_id"], {})
        for key in RECORD_FACTS:
            if known.get(key) is None:
                known[key] = record.get(key)
    rows = []
    for row in inputs.to_dict(orient="records"):
        entry = {key: row.get(key) for key in INPUT_COLUMNS}
        entry |= {key: facts.get(row["image_id"], {}).get(key) for key in RECORD_FACTS}
        rows.append(entry)
    return rows


def work_source(dims: ModelDims | None) -> WorkSource:
    """Where a run's work comes from: the formulas of `dims`, or, for a model without them
    (`dims` None), the work counted over each page's run."""
    return WorkSource.COUNTED if dims is None else WorkSource.FORMULAS


# The prompt each kind of model is given, as the assumptions state it.
_PROMPTS = {
    WorkSource.FORMULAS: "The prompt is tokenised by a stand-in tokenizer (BOS, the image "
    "tokens, then the reference prompt split like a BPE tokenizer would), so its text length "
    "is an estimate.",
    WorkSource.COUNTED: "The prompt is a stand-in: a few fixed token ids around the image "
    "tokens, laid out as the architecture's processor lays them out, so its text length is an "
    "estimate.",
}
# How each kind of work is counted, as the assumptions state it.
_WORK_SENTENCES = {
    WorkSource.FORMULAS: "FLOPs and bytes are analytic, from the model's dimensions at each "
    "record's shapes: a (m x k) by (k x n) matmul is 2*m*k*n FLOPs, only matmul-class work is "
    "counted, and the decoder's causal attention counts each query against the keys up to "
    "itself, L(L+1)/2 pairs in a prefill of L tokens, as the fused kernels compute it (vision "
    "attention is bidirectional: the full square); static.conventions lists every rule.",
    WorkSource.COUNTED: "FLOPs and bytes are counted over each page's own untimed run "
    "(FlopCounterMode, and each matmul-class op's tensors read and written at the dispatcher, "
    "weights included): a (m x k) by (k x n) matmul is 2*m*k*n FLOPs, only matmul-class work "
    "is counted, and attention is counted whatever its kernel (causal attention as the fused "
    "kernels compute it, each query against the keys up to itself); decode steps after the "
    "two counted ones grow by the same work per cached position.",
}


def _length_sentence(config: dict[str, Any]) -> str:
    """How long each generation runs, as the assumptions state it."""
    most = config["max_new_tokens"]
    kind = (config.get("output_length") or {}).get("kind", "fixed")
    if kind == "fixed" and config["ignore_eos"]:
        return (
            f"Every generation runs exactly {most} tokens with end-of-sequence ignored, so "
            "decode work is identical across repeats; a real model stops earlier on most "
            "pages (output_length gives each page a length of its own)."
        )
    if kind == "fixed":
        return f"Generation stops at end-of-sequence or {most} tokens."
    stop = "its end-of-sequence or its length" if not config["ignore_eos"] else "its length"
    return (
        f"Each page generates up to its own length (output_length: {kind}, at most {most} "
        f"tokens) and stops at {stop}; a batch runs until its longest page ends, and "
        "decode_slots counts the decode steps its pages' slots ran after they had ended."
    )


def assumptions(
    config: dict[str, Any],
    peaks: dict[str, Any],
    dims: ModelDims | None,
    context_len_mode: str,
    context_len_fixed: int | None,
) -> list[str]:
    """Plain sentences a reader needs before trusting or comparing the numbers."""
    seed = config["model"]["seed"]
    source = work_source(dims)
    sentences = [
        f"Weights are random (seed {seed}): times, FLOPs and bytes depend on shapes only, and "
        "the generated text is meaningless.",
        _PROMPTS[source],
    ]
    sentences.append(_length_sentence(config))
    reference, calibrated = peaks["reference"], peaks["calibrated"]
    if reference["tflops"] is not None:
        sentences.append(
            f"The 'datasheet' MFU/MBU columns divide by {reference['tflops']:g} TFLOP/s and "
            f"{reference['tbps']} TB/s ({reference['label']})."
        )
    else:
        sentences.append(f"The 'datasheet' MFU/MBU columns are empty: {reference['reason']}.")
    if calibrated["tflops"] is not None:
        sentences.append(
            f"The 'calibrated' columns divide by peaks measured on this machine: "
            f"{calibrated['tflops']:.4g} TFLOP/s and {calibrated['tbps']:.4g} TB/s "
            f"({calibrated['label']})."
        )
    else:
        sentences.append(f"The 'calibrated' columns are empty: {calibrated['reason']}.")
    max_positions = None if dims is None else dims.decoder.max_positions
    sentences += [
        _WORK_SENTENCES[source],
        _CONTEXT_SENTENCES[context_len_mode].format(
            max_positions=max_positions, fixed=context_len_fixed
        ),
        "Vision (SAM, CLIP, projector) runs inside prefill: its time is part of prefill time, "
        "llm_prefill = prefill - vision, and no total adds vision to prefill.",
        f"Headline figures: {HEADLINE}.",
        "MBU divides the necessary bytes (weights read, KV cache read and written, inputs and "
        "outputs of the matmul-class ops: the least any implementation moves) by the time; "
        "the bytes as implemented (every op's traffic, counted over an untimed run of each "
        "page) stand beside them. At batch size 1 decode is bound by memory bandwidth, so "
        "MBU, not MFU, is its ceiling.",
    ]
    return sentences


def _ratio_table(
    per_stage: dict[str, Any],
    stages: Sequence[str],
    rate: str,
    rate_column: str,
    amounts: Sequence[str],
) -> pd.DataFrame:
    """Stage x {datasheet, calibrated} utilisation with the achieved rate and the `amounts`
    (per-run work keys of metrics.json, e.g. `flops_per_run`)."""
    rows = [
        {
            "stage": stage,
            "datasheet": per_stage[stage]["datasheet"],
            "calibrated": per_stage[stage]["calibrated"],
            rate_column: per_stage[stage][rate],
            **{amount: per_stage[stage].get(amount) for amount in amounts},
            "records": per_stage[stage]["records"],
        }
        for stage in stages
        if stage in per_stage
    ]
    columns = ["datasheet", "calibrated", rate_column, *amounts, "records"]
    return pd.DataFrame(rows, columns=["stage", *columns]).set_index("stage")


def build_metrics(
    record_paths: Sequence[str | Path],
    static_compute: dict[str, Any],
    dims: ModelDims | None,
    dtype: str,
    peaks: dict[str, Any],
    environment: dict[str, Any],
    inputs: pd.DataFrame,
    config: dict[str, Any],
    context_len_mode: str,
    context_len_fixed: int | None,
    tolerance: float,
    timeline: dict[str, Any] | None = None,
    workers: int = 0,
) -> tuple[MetricsDocument, dict[str, pd.DataFrame]]:
    """metrics.json and the tables stage_ms, per_image, per_category, mfu, mbu and
    per_record; `timeline` is the operator pass's ops/timeline.json (None without it), set
    against the timing pass's per-page means; `workers` the processes that loaded and
    preprocessed the pages (0: inline)."""
    records = read_records(list(record_paths))
    agg = aggregate_records(records, tolerance)
    mfu, mbu, per_record = utilisation(
        records, dims, peaks, dtype, context_len_mode, context_len_fixed
    )
    per_image = per_image_table(records)
    categories: dict[str, str] = {}
    if "category" in inputs.columns:
        per_image.insert(0, "category", inputs.set_index("image_id")["category"])
        named = inputs["category"].astype("string").fillna(UNCATEGORISED)
        categories = dict(zip(inputs["image_id"], named, strict=True))
    metrics = {
        "run_name": config["run_name"],
        **agg,
        "work": to_plain(Work.of(work_source(dims))),
        "mfu": mfu,
        "mbu": mbu,
        "roofline": roofline_section(per_record, peaks),
        "peaks": peaks,
        "static": {
            "params": static_compute["params"],
            "per_view_flops": static_compute["flops"],
            "conventions": static_compute.get("conventions", []),
        },
        "telemetry": telemetry_section(records, config, environment),
        "host": host_section(records),
        "decode_slots": decode_slots(records),
        "pipeline": pipeline_section(records, workers),
        "memory": memory_section(records, dims, dtype, config["max_new_tokens"]),
        "environment": environment | {"shards": shard_environment(records)},
        "inputs": input_rows(inputs, records),
        "config": config,
        "config_hash": config_hash(config),
        "assumptions": assumptions(config, peaks, dims, context_len_mode, context_len_fixed),
    }
    metrics["cost"] = cost_section(
        records, agg["aggregates"], metrics["telemetry"], config.get("cost", {})
    )
    if timeline is not None:
        metrics["timeline"] = against_timing_pass(timeline, per_image)
    per_stage_mfu = {**mfu.get("per_stage", {}), "model": mfu.get("model_level")}
    tables = {
        "stage_ms": stage_table(agg),
        "per_image": per_image,
        "per_category": per_category_table(records, categories),
        "mfu": _ratio_table(
            {k: v for k, v in per_stage_mfu.items() if v},
            MFU_STAGES,
            "achieved_tflops",
            "achieved (TFLOP/s)",
            ["flops_per_run"],
        ),
        "mbu": _ratio_table(
            mbu.get("per_stage", {}),
            MBU_STAGES,
            "achieved_tbps",
            "achieved (TB/s)",
            ["bytes_necessary_per_run", "bytes_as_implemented_per_run"],
        ),
        "per_record": per_record,
    }
    document = MetricsDocument.from_dict(_json_safe(metrics), "the metrics being built")
    return document, tables


def write_metrics(
    metrics: MetricsDocument,
    tables: dict[str, pd.DataFrame],
    metrics_path: str | Path,
    tables_dir: str | Path,
) -> None:
    """Write metrics.json and one `<name>.csv` per table, each atomically."""
    metrics.write(metrics_path)
    for name, table in tables.items():
        with atomic_open(Path(tables_dir) / f"{name}.csv") as handle:
            table.to_csv(handle, index=not isinstance(table.index, pd.RangeIndex))

"""The tables the notebooks show, read from one run's outputs (results/<run_name>/).

`load_run` reads what the pipeline wrote; every other function turns part of it into a
DataFrame with units in its column names. Numbers are taken from metrics.json and the run's
tables as written; only regroupings (shares, the uninstrumented vision remainder, unit
changes) are computed here. `format_number` is the one number format both notebooks use.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from vlmprof.flops.analytic import bytes_per_element, llm_prefill_cost, vision_cost
from vlmprof.metrics.utilisation import moved_bytes
from vlmprof.models import spec_dims
from vlmprof.records import read_records
from vlmprof.report.timed_busy import quoted_verdict

# Display name of each stage of metrics.json's aggregates.stage_ms, in reading order.
STAGE_NAMES: dict[str, str] = {
    "prefill": "prefill",
    "vision": "vision",
    "sam": "SAM",
    "clip": "CLIP",
    "projector": "projector",
    "llm_prefill": "LLM prefill",
    "decode": "decode",
    "decode_per_token": "decode per token (TPOT)",
    "ttft": "time to first token (TTFT)",
    "preprocess": "preprocess",
    "load": "image load",
}
STAGE_DEFINITIONS: dict[str, str] = {
    "prefill": "first forward pass, inputs on device to first logits (vision included)",
    "vision": "the vision encoder: SAM + CLIP (or encoder) + projector; nested in prefill",
    "sam": "SAM ViT-B encoder with its 16x compressor; nested in vision",
    "clip": "CLIP ViT-L fed by SAM features (DeepSeek-OCR-2: its Qwen2 visual encoder); "
    "nested in vision",
    "projector": "linear projector to the decoder width; nested in vision",
    "llm_prefill": "prefill minus vision: the decoder over the whole prompt, and glue",
    "decode": "token loop after the first token until the last one",
    "decode_per_token": "one decode step (time per output token); nested in decode",
    "ttft": "time to first token: prefill plus sampling the first token",
    "preprocess": "resize, crop and normalise the page (belongs to no stage)",
    "load": "read and decode the image file (belongs to no stage)",
}
# Exclusive parts of prefill: the vision sub-stages, the uninstrumented rest of vision
# (vision - sam - clip - projector) and the decoder's part (prefill - vision).
PREFILL_PARTS: tuple[str, ...] = ("SAM", "CLIP", "projector", "vision remainder", "LLM prefill")
PAGE_PARTS: tuple[str, ...] = (*PREFILL_PARTS, "decode")
# Stages the per-category views compare: prefill, its two exclusive halves, and decode.
CATEGORY_STAGES: tuple[str, ...] = ("prefill", "vision", "llm_prefill", "decode")
MISSING = "-"
NO_OPERATOR_PASS = (
    "No operator pass in this run (operators.enabled: false): no operator tables and no timeline."
)
NOTHING_TIMED = "Nothing to show: every page failed (the Failures section lists why)."
REQUIRED_FILES: tuple[str, ...] = (
    "metrics.json",
    "tables/stage_ms.csv",
    "tables/mfu.csv",
    "tables/mbu.csv",
    "tables/per_image.csv",
    "tables/per_category.csv",
    "inputs/subset.csv",
    "static/static_compute.json",
)


@dataclass
class RunOutputs:
    """Everything a report reads from one run folder."""

    run_dir: Path
    metrics: dict[str, Any]
    stage_ms: pd.DataFrame
    mfu: pd.DataFrame
    mbu: pd.DataFrame
    per_image: pd.DataFrame
    per_category: pd.DataFrame
    subset: pd.DataFrame
    records: list[dict[str, Any]]
    static: dict[str, Any]
    operators: pd.DataFrame | None
    benchmarks: pd.DataFrame


def load_run(run_dir: str | Path) -> RunOutputs:
    """Read a run folder; a missing required file raises naming it and what to do.

    ops/operators.csv is required when the run's config enables the operator pass and is
    None otherwise; benchmarks/*.tsv may be absent (an empty frame).
    """
    run_dir = Path(run_dir)
    for name in REQUIRED_FILES:
        if not (run_dir / name).is_file():
            raise FileNotFoundError(
                f"{run_dir / name}: missing; run the workflow up to its aggregate step first"
            )
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    shards = sorted((run_dir / "runs").glob("shard-*.jsonl"))
    if not shards:
        raise FileNotFoundError(f"{run_dir / 'runs'}: no shard-*.jsonl run records; rerun it")
    operators_path = run_dir / "ops" / "operators.csv"
    operators = None
    if metrics["config"]["operators"]["enabled"]:
        if not operators_path.is_file():
            raise FileNotFoundError(
                f"{operators_path}: missing although operators.enabled is true; rerun the "
                "operator_profile step"
            )
        operators = pd.read_csv(operators_path)
    tables = run_dir / "tables"
    return RunOutputs(
        run_dir=run_dir,
        metrics=metrics,
        stage_ms=pd.read_csv(tables / "stage_ms.csv", index_col="stage"),
        mfu=pd.read_csv(tables / "mfu.csv", index_col="stage"),
        mbu=pd.read_csv(tables / "mbu.csv", index_col="stage"),
        per_image=pd.read_csv(
            tables / "per_image.csv", index_col="image_id", dtype={"image_id": str}
        ),
        per_category=pd.read_csv(tables / "per_category.csv", dtype={"category": "string"}),
        subset=pd.read_csv(run_dir / "inputs" / "subset.csv", dtype={"image_id": str}),
        records=read_records(shards),
        static=json.loads((run_dir / "static" / "static_compute.json").read_text("utf-8")),
        operators=operators,
        benchmarks=read_benchmarks(sorted((run_dir / "benchmarks").glob("*.tsv"))),
    )


def format_number(value: Any) -> str:
    """How every number is printed: 2 decimals (thousands separated) from 1 up, else 3
    significant digits (zeros kept); integers as they are; missing values as a dash."""
    if value is None or (isinstance(value, numbers.Real) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:#.3g}"


def styled(table: pd.DataFrame) -> Styler:
    """`table` for display: numbers through `format_number`, text left-aligned, a default
    index hidden."""
    style = table.style.format(format_number)
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        style = style.set_properties(subset=text, **{"text-align": "left"})
    if isinstance(table.index, pd.RangeIndex):
        style = style.hide(axis="index")
    return style


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * float(value)


# --- environment and provenance ---------------------------------------------------------


def provenance_notes(metrics: dict[str, Any]) -> list[str]:
    """Warnings a reader must see before any number: CPU timings, an automatic fallback."""
    env = metrics["environment"]
    used = str(env.get("device_used") or "")
    notes = []
    if env.get("device_requested") == "auto" and used.startswith("cpu"):
        notes.append("device: auto fell back to CPU (no CUDA device was found).")
    if used.startswith("cpu"):
        notes.append(
            "These are CPU timings of the small preset: they show the pipeline and the "
            "model's structure, not GPU performance. Run with device: cuda for GPU numbers."
        )
    if env.get("device_error"):
        notes.append(f"Device problem: {env['device_error']}")
    return notes


def environment_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Device, model, software versions and provenance of the run, one fact per row."""
    env, config = metrics["environment"], metrics["config"]
    resolved = config.get("resolved", {})
    packages = env.get("packages", {})
    commit = env.get("git_commit")
    if commit and env.get("git_dirty"):
        commit = f"{commit} (with uncommitted changes)"
    rows = [
        ("run name", metrics["run_name"]),
        ("device requested", env.get("device_requested")),
        ("device used", env.get("device_used")),
        ("GPU", env.get("gpu_name") or "none"),
        ("CPU", env.get("cpu_model")),
        ("model preset", resolved.get("preset")),
        ("dtype", metrics["peaks"].get("dtype")),
        ("resolution mode", config.get("mode")),
        (
            "attention / experts kernels",
            f"{resolved.get('attn_implementation')} / {resolved.get('experts_implementation')}",
        ),
        ("driver", env.get("driver")),
        ("CUDA", env.get("cuda_version")),
        ("cuDNN", env.get("cudnn_version")),
        ("python", env.get("python")),
        *((package, packages.get(package)) for package in sorted(packages)),
        ("platform", env.get("platform")),
        ("git commit", commit or "unknown (not run from a git checkout)"),
        ("config hash", metrics["config_hash"]),
    ]
    return pd.DataFrame(
        [(key, MISSING if value is None else str(value)) for key, value in rows],
        columns=["fact", "value"],
    )


def read_benchmarks(paths: list[Path]) -> pd.DataFrame:
    """Snakemake benchmark files (one row per job): wall time and peak memory of each job."""
    rows = []
    for path in paths:
        frame = pd.read_csv(path, sep="\t")
        for _, row in frame.iterrows():
            rows.append(
                {
                    "job": path.stem,
                    "wall (s)": float(row["s"]),
                    "peak RSS (MB)": float(row["max_rss"]),
                    "CPU time (s)": float(row["cpu_time"]),
                }
            )
    return pd.DataFrame(rows, columns=["job", "wall (s)", "peak RSS (MB)", "CPU time (s)"])


def benchmark_table(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """The pipeline's own cost per job; the notebooks' render jobs finish after the page
    is written, so theirs are left out."""
    return benchmarks[~benchmarks["job"].str.startswith("render_")].reset_index(drop=True)


# --- inputs --------------------------------------------------------------------------------


def input_table(metrics: dict[str, Any], subset: pd.DataFrame) -> pd.DataFrame:
    """The profiled pages: category, size, crops, image tokens and prefill length."""
    facts = pd.DataFrame(metrics["inputs"]).set_index("image_id")
    table = subset.set_index("image_id")[["category", "width", "height"]].join(
        facts[["mode", "n_crops", "image_tokens", "prefill_len"]], how="left"
    )
    return table.rename(
        columns={
            "width": "width (px)",
            "height": "height (px)",
            "n_crops": "crops",
            "image_tokens": "image tokens",
            "prefill_len": "prefill length (tokens)",
        }
    )


# --- timing ------------------------------------------------------------------------------


def stage_timing_table(stage_ms: pd.DataFrame) -> pd.DataFrame:
    """Per stage mean, std, CV (%), p50 and p90 (ms), with what each stage is and its nesting."""
    rows = []
    for stage in [s for s in STAGE_NAMES if s in stage_ms.index]:
        row = stage_ms.loc[stage]
        nested = row["nested_in"]
        rows.append(
            {
                "stage": STAGE_NAMES[stage],
                "mean (ms)": row["mean (ms)"],
                "std (ms)": row["std (ms)"],
                "CV (%)": _percent(row["cv"]),
                "p50 (ms)": row["p50 (ms)"],
                "p90 (ms)": row["p90 (ms)"],
                "n": int(row["n"]),
                "nested in": nested if isinstance(nested, str) else MISSING,
                "definition": STAGE_DEFINITIONS[stage],
            }
        )
    return pd.DataFrame(rows)


def timed(metrics: dict[str, Any]) -> bool:
    """Whether any ok record timed the run's stages (False when every page failed)."""
    return {"prefill", "decode"} <= set(metrics["aggregates"]["stage_ms"])


def _stage_mean(metrics: dict[str, Any], stage: str) -> float:
    stages = metrics["aggregates"]["stage_ms"]
    if stage not in stages:
        raise KeyError(f"metrics.json: aggregates.stage_ms has no {stage!r}; no ok record timed it")
    return float(stages[stage]["mean"])


def _remainder(vision: Any, parts: Any) -> Any:
    """vision - (sam + clip + projector), with rounding noise of a sum-defined vision as 0."""
    rest = vision - parts
    noise = abs(rest) <= 1e-9 * abs(vision)
    if isinstance(rest, pd.Series):
        return rest.mask(noise, 0.0)
    return 0.0 if noise else rest


def run_split(metrics: dict[str, Any]) -> pd.DataFrame:
    """Prefill and decode: mean time per page (ms) and share of prefill + decode (%)."""
    means = pd.Series({p: _stage_mean(metrics, p) for p in ("prefill", "decode")})
    return pd.DataFrame({"mean (ms)": means, "share (%)": 100.0 * means / means.sum()})


def _exclusive_prefill_parts(ms: dict[str, Any]) -> dict[str, Any]:
    """SAM, CLIP, projector, vision remainder and LLM prefill from stage times (scalars or
    per-page Series alike): the parts that add up to prefill without overlap."""
    return {
        "SAM": ms["sam"],
        "CLIP": ms["clip"],
        "projector": ms["projector"],
        "vision remainder": _remainder(ms["vision"], ms["sam"] + ms["clip"] + ms["projector"]),
        "LLM prefill": ms["prefill"] - ms["vision"],
    }


def prefill_split(metrics: dict[str, Any]) -> pd.DataFrame:
    """Prefill cut into exclusive parts: SAM, CLIP, projector, the vision remainder
    (vision - SAM - CLIP - projector, time in vision no sub-stage timer covers) and LLM
    prefill (prefill - vision); mean (ms) and share of prefill (%)."""
    mean = {s: _stage_mean(metrics, s) for s in ("prefill", "vision", "sam", "clip", "projector")}
    parts = pd.Series(_exclusive_prefill_parts(mean))
    return pd.DataFrame(
        {"mean (ms)": parts, "share of prefill (%)": 100.0 * parts / mean["prefill"]}
    )


def page_split(metrics: dict[str, Any]) -> pd.DataFrame:
    """Exclusive parts of a page's prefill + decode time: mean (ms) and share (%)."""
    parts = prefill_split(metrics)["mean (ms)"]
    parts["decode"] = _stage_mean(metrics, "decode")
    return pd.DataFrame({"mean (ms)": parts, "share (%)": 100.0 * parts / parts.sum()})


def per_image_parts(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per page, the mean time (ms) of each exclusive part of prefill and of decode."""
    ms = {s: per_image[f"{s} (ms)"] for s in ("prefill", "vision", "sam", "clip", "projector")}
    parts = pd.DataFrame(
        {f"{name} (ms)": values for name, values in _exclusive_prefill_parts(ms).items()}
    )
    parts["decode (ms)"] = per_image["decode (ms)"]
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
            name = STAGE_NAMES[stage]
            table[f"{name} (ms)"] = rows["mean (ms)"]
            table[f"{name} CV (%)"] = 100.0 * rows["cv"]
    return table


def decode_latency_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """TTFT and time per output token: mean, p50, p90, p99 (ms) and samples."""
    stages = metrics["aggregates"]["stage_ms"]
    rows = []
    for stage in ("ttft", "decode_per_token"):
        if stage in stages:
            s = stages[stage]
            rows.append(
                {
                    "latency": STAGE_NAMES[stage],
                    "mean (ms)": s["mean"],
                    "p50 (ms)": s["p50"],
                    "p90 (ms)": s["p90"],
                    "p99 (ms)": s["p99"],
                    "samples": s["n"],
                }
            )
    return pd.DataFrame(rows)


def decode_steps(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Every decode step of the ok records: image, repeat, step index and its time (ms)."""
    rows = [
        {"image_id": r["image_id"], "repeat": r["repeat"], "step": i + 1, "step (ms)": ms}
        for r in records
        if r.get("status", "ok") == "ok"
        for i, ms in enumerate(r.get("decode_step_ms") or [])
    ]
    return pd.DataFrame(rows, columns=["image_id", "repeat", "step", "step (ms)"])


def ttft_values(records: list[dict[str, Any]]) -> pd.Series:
    """TTFT (ms) of every ok record."""
    values = [r["ttft_ms"] for r in records if r.get("status", "ok") == "ok" and r.get("ttft_ms")]
    return pd.Series(values, name="TTFT (ms)", dtype=float)


# --- utilisation ---------------------------------------------------------------------------


def peaks_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The two denominators of MFU and MBU, each with where it came from (or why absent)."""
    peaks = metrics["peaks"]
    rows = []
    for column, entry, source_key in (
        ("datasheet", peaks["reference"], "label"),
        ("calibrated", peaks["calibrated"], "label"),
    ):
        rows.append(
            {
                "peak": column,
                "compute (TFLOP/s)": entry["tflops"],
                "bandwidth (TB/s)": entry["tbps"],
                "source": entry.get(source_key) or entry.get("reason") or MISSING,
            }
        )
    return pd.DataFrame(rows)


def missing_peak_reasons(metrics: dict[str, Any]) -> dict[str, str]:
    """Why the datasheet or calibrated peak is absent, for each that is."""
    peaks = metrics["peaks"]
    return {
        column: entry.get("reason") or "unknown"
        for column, entry in (
            ("datasheet", peaks["reference"]),
            ("calibrated", peaks["calibrated"]),
        )
        if entry["tflops"] is None or entry["tbps"] is None
    }


def utilisation_table(mfu: pd.DataFrame, mbu: pd.DataFrame) -> pd.DataFrame:
    """Per stage MFU and MBU (%) against the datasheet and calibrated peaks, achieved rates
    and the work per run (from tables/mfu.csv and tables/mbu.csv)."""
    table = pd.DataFrame(index=mfu.index)
    table["MFU datasheet (%)"] = 100.0 * mfu["datasheet"]
    table["MFU calibrated (%)"] = 100.0 * mfu["calibrated"]
    table["achieved (GFLOP/s)"] = 1000.0 * mfu["achieved (TFLOP/s)"]
    table["GFLOP per page"] = mfu["flops_per_run"] / 1e9
    table["MBU datasheet (%)"] = 100.0 * mbu["datasheet"].reindex(table.index)
    table["MBU calibrated (%)"] = 100.0 * mbu["calibrated"].reindex(table.index)
    table["achieved (GB/s)"] = 1000.0 * mbu["achieved (TB/s)"].reindex(table.index)
    table["GB per page"] = mbu["bytes_per_run"].reindex(table.index) / 1e9
    table.index = [STAGE_NAMES.get(s, "whole model" if s == "model" else s) for s in table.index]
    table.index.name = "stage"
    return table


def decode_roofline_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Bytes one decode step moves and the step time each peak bandwidth would allow."""
    roof = metrics["mbu"].get("decode_roofline")
    if not roof or roof.get("bytes_per_token") is None:
        return pd.DataFrame(columns=["quantity", "value"])
    rows = [
        ("MB moved per decode step", roof["bytes_per_token"] / 1e6),
        ("measured time per step (ms)", roof["ms_per_token_measured"]),
        ("step time at datasheet bandwidth (ms)", roof["ms_per_token_at_datasheet_bw"]),
        ("step time at calibrated bandwidth (ms)", roof["ms_per_token_at_calibrated_bw"]),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def timeline_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Per stage of the operator pass: busy share, launches, mean op/kernel time, idle gaps
    and the launch-bound verdict. Empty when the operator pass was disabled."""
    timeline = metrics.get("timeline") or {}
    stages = [s for s in STAGE_NAMES if s in timeline]
    rows = [
        {
            "stage": STAGE_NAMES.get(stage, stage),
            "busy under profiler (%)": _percent(t["busy_fraction"]),
            # Against the timing pass (vlmprof.metrics.dilation); absent in older runs.
            "busy vs timed stage (%)": _percent(t.get("busy_fraction_timed")),
            "profiler dilation (x)": t.get("dilation"),
            "launches": t["launches"],
            "mean kernel or op (us)": t["mean_kernel_us"],
            "launch overhead (us)": t["launch_overhead_us"],
            "launch overhead timed (us)": t.get("launch_overhead_us_timed"),
            "idle in gaps (ms)": t["idle_gap_ms"],
            "verdict": quoted_verdict(t),
            "basis": t["basis"],
        }
        for stage, t in ((s, timeline[s]) for s in stages)
    ]
    return pd.DataFrame(rows)


def _prefill_part_work(metrics: dict[str, Any], records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per ok record and prefill part: analytic FLOPs and bytes, and the measured time (ms).

    Uses the formulas and shapes the MFU/MBU figures of metrics.json were computed with.
    """
    resolved = metrics["config"]["resolved"]
    dims = spec_dims(
        resolved.get("name", "deepseek_ocr"),
        resolved["preset"],
        resolved["overrides"],
        resolved.get("checkpoint"),
    )
    per_el = bytes_per_element(metrics["peaks"]["dtype"])
    rows = []
    for r in records:
        if r.get("status", "ok") != "ok":
            continue
        costs = vision_cost(dims, r["mode"], r["n_crops"], per_el)
        costs["llm_prefill"] = llm_prefill_cost(dims, r["prefill_len"], per_el)
        times = {s: r.get(f"{s}_ms") for s in ("sam", "clip", "projector", "vision")}
        times["llm_prefill"] = r["prefill_ms"] - r["vision_ms"]
        for stage, cost in costs.items():
            if times[stage] is not None and times[stage] > 0:
                rows.append(
                    {
                        "stage": stage,
                        "flops": cost.flops,
                        "bytes": moved_bytes(cost, with_activations=True),
                        "ms": times[stage],
                    }
                )
    return pd.DataFrame(rows, columns=["stage", "flops", "bytes", "ms"])


def roofline_points(metrics: dict[str, Any], records: list[dict[str, Any]]) -> pd.DataFrame:
    """Each stage on the roofline: work per page, arithmetic intensity (FLOP/byte),
    achieved rate and the roofs (GFLOP/s) at that intensity.

    Prefill and decode come from metrics.json (mfu/mbu per stage); SAM, CLIP, projector,
    vision and LLM prefill from the same analytic formulas at each ok record's shapes.
    Achieved = summed FLOPs over summed time; roof = min(peak compute, intensity x peak
    bandwidth); "bound by" compares the intensity with the calibrated ridge point.
    """
    totals = (
        _prefill_part_work(metrics, records)
        .groupby("stage")
        .agg(flops=("flops", "sum"), bytes=("bytes", "sum"), ms=("ms", "sum"), n=("ms", "size"))
    )
    mfu, mbu = metrics["mfu"].get("per_stage", {}), metrics["mbu"].get("per_stage", {})
    for stage in ("prefill", "decode"):
        if stage in mfu and stage in mbu and mfu[stage].get("records"):
            totals.loc[stage] = {
                "flops": mfu[stage]["flops_total"],
                "bytes": mbu[stage]["bytes_total"],
                "ms": mfu[stage]["time_ms_total"],
                "n": mfu[stage]["records"],
            }
    order = ("sam", "clip", "projector", "vision", "llm_prefill", "prefill", "decode")
    totals = totals.reindex([s for s in order if s in totals.index])
    intensity = totals["flops"] / totals["bytes"]
    table = pd.DataFrame(
        {
            "GFLOP per page": totals["flops"] / totals["n"] / 1e9,
            "MB per page": totals["bytes"] / totals["n"] / 1e6,
            "intensity (FLOP/byte)": intensity,
            "achieved (GFLOP/s)": totals["flops"] / totals["ms"] / 1e6,
        }
    )
    for column, entry in (
        ("datasheet", metrics["peaks"]["reference"]),
        ("calibrated", metrics["peaks"]["calibrated"]),
    ):
        if entry["tflops"] and entry["tbps"]:
            roof = (intensity * entry["tbps"] * 1e3).clip(upper=entry["tflops"] * 1e3)
            table[f"{column} roof (GFLOP/s)"] = roof
            table[f"of {column} roof (%)"] = 100.0 * table["achieved (GFLOP/s)"] / roof
    calibrated = metrics["peaks"]["calibrated"]
    if calibrated["tflops"] and calibrated["tbps"]:
        ridge = calibrated["tflops"] / calibrated["tbps"]
        table["bound by (calibrated)"] = ["memory" if i < ridge else "compute" for i in intensity]
    table.index = [STAGE_NAMES[s] for s in table.index]
    table.index.name = "stage"
    return table


# --- operators -----------------------------------------------------------------------------


def _operator_stage_columns(operators: pd.DataFrame) -> list[str]:
    return [
        c for c in operators.columns if c.endswith(" (ms)") and c not in ("total (ms)", "self (ms)")
    ]


def top_operators(operators: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """The `n` operators with the most self time, their stage and shares (%)."""
    total = float(operators["self (ms)"].sum())
    top = operators.sort_values("self (ms)", ascending=False, kind="stable").head(n)
    return pd.DataFrame(
        {
            "operator": top["operator"],
            "category": top["category"],
            "stage": top["stage"].map(lambda s: STAGE_NAMES.get(s, s)),
            "calls": top["calls"],
            "self (ms)": top["self (ms)"],
            "share of all (%)": 100.0 * top["self (ms)"] / total,
            "share of its stage (%)": 100.0 * top["share of stage"],
        }
    ).reset_index(drop=True)


def operator_categories(operators: pd.DataFrame) -> pd.DataFrame:
    """Self time per operator category (ms), its share (%) and its split by stage (ms)."""
    stage_columns = _operator_stage_columns(operators)
    grouped = operators.groupby("category")[["self (ms)", *stage_columns]].sum()
    grouped = grouped.sort_values("self (ms)", ascending=False)
    grouped.insert(1, "share (%)", 100.0 * grouped["self (ms)"] / grouped["self (ms)"].sum())
    return grouped


def operator_stage_share(operators: pd.DataFrame) -> pd.DataFrame:
    """Category x stage: each category's share (%) of that stage's operator self time."""
    stage_columns = _operator_stage_columns(operators)
    by_category = operators.groupby("category")[stage_columns].sum()
    totals = by_category.sum()
    shares = 100.0 * by_category / totals.where(totals > 0)
    shares.columns = [c.removesuffix(" (ms)") for c in shares.columns]
    return shares


# --- static compute ------------------------------------------------------------------------


def params_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Parameters (millions) of each part of the model."""
    params = metrics["static"]["params"]
    return pd.DataFrame(
        {"part": list(params), "parameters (M)": [v / 1e6 for v in params.values()]}
    )


def static_crosscheck(static: dict[str, Any]) -> pd.DataFrame:
    """Per stage and view: FLOPs counted three ways (GFLOP) and their differences (%).

    fvcore cannot see inside SDPA; "fvcore adjusted" adds those FLOPs back and removes its
    elementwise estimates. "agrees": yes (all within 2%), explained (fvcore's gap closes once
    adjusted), NO, or not counted.
    """
    rows = []
    for name, entry in static["stages"].items():
        gap = entry.get("fvcore_gap") or {}
        fcm, fv, adjusted = (
            entry.get("rel_diff_flopcountermode"),
            entry.get("rel_diff_fvcore"),
            gap.get("rel_diff_after"),
        )
        if fcm is None and fv is None:
            agrees = "not counted"
        elif abs(fcm or 0.0) <= 0.02 and abs(fv or 0.0) <= 0.02:
            agrees = "yes"
        elif abs(fcm or 0.0) <= 0.02 and gap.get("explained"):
            agrees = "explained"
        else:
            agrees = "NO"
        rows.append(
            {
                "stage": name,
                "analytic (GFLOP)": entry["analytic"] / 1e9,
                "FlopCounterMode (GFLOP)": _giga(entry.get("flopcountermode")),
                "fvcore x2 (GFLOP)": _giga(entry.get("fvcore")),
                "FCM vs analytic (%)": _percent(fcm),
                "fvcore vs analytic (%)": _percent(fv),
                "fvcore adjusted vs analytic (%)": _percent(adjusted),
                "agrees": agrees,
            }
        )
    return pd.DataFrame(rows)


def _giga(value: float | None) -> float | None:
    return None if value is None else value / 1e9


# --- checks --------------------------------------------------------------------------------


def repeatability_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Per stage, how far repeats of one page spread, against the configured tolerance."""
    rep = metrics["repeatability"]
    tolerance = 100.0 * rep["tolerance"]
    rows = [
        {
            "stage": STAGE_NAMES.get(stage, stage),
            "pages": s["images"],
            "max deviation from page mean (%)": _percent(s["max_deviation"]),
            "max spread (%)": _percent(s["max_spread"]),
            "mean CV (%)": _percent(s["mean_cv"]),
            "worst page": s["worst_image"],
            f"within +/-{tolerance:g}%": "pass" if s["pass"] else "FAIL",
        }
        for stage, s in sorted(rep["stages"].items(), key=lambda item: _stage_order(item[0]))
    ]
    return pd.DataFrame(rows)


def _stage_order(stage: str) -> int:
    return list(STAGE_NAMES).index(stage) if stage in STAGE_NAMES else len(STAGE_NAMES)


def failed_pages_table(metrics: dict[str, Any], subset: pd.DataFrame) -> pd.DataFrame:
    """Pages with a failed record: image id, path, how many repeats failed and why (the
    page's path left out of the reason, as it has a column of its own)."""
    columns = ["image id", "path", "failed repeats", "reason"]
    failures = pd.DataFrame(metrics["failures"], columns=["image_id", "repeat", "error"])
    if failures.empty:
        return pd.DataFrame(columns=columns)
    paths = subset.set_index("image_id")["path"].astype("string")
    rows = []
    for image_id, group in failures.groupby("image_id", sort=False):
        path = paths.get(image_id)
        reasons = (str(e).replace(f"{path}: ", "") if path else str(e) for e in group["error"])
        rows.append(
            {
                "image id": image_id,
                "path": MISSING if path is None else path,
                "failed repeats": len(group),
                "reason": "; ".join(dict.fromkeys(reasons)),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def unprofiled_pages(failed_pages: pd.DataFrame, per_image: pd.DataFrame) -> dict[str, str]:
    """Failed pages (`failed_pages_table`) without any ok record, each with its reason;
    tables/per_image.csv lists exactly the pages with one."""
    return {
        str(row["image id"]): str(row["reason"])
        for _, row in failed_pages.iterrows()
        if row["image id"] not in per_image.index
    }

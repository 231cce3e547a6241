"""The sections that say whether to trust a run: environment and provenance (with the
device of every shard), the pipeline's own cost, repeatability, failed pages and the
configuration to reproduce it."""

from __future__ import annotations

import dataclasses

import pandas as pd
import yaml

from vlmprof.metrics.document import MetricsDocument, ShardEnvironment
from vlmprof.report.formatting import MISSING, as_percent, display_name
from vlmprof.stages import STAGE_NAMES

# metrics.json's environment.shards keys (every field of ShardEnvironment), with the column
# each is shown in.
SHARD_COLUMNS: dict[str, str] = {
    "shard": "shard",
    "device": "device",
    "gpu_index": "GPU index",
    "gpu_uuid": "GPU UUID",
    "gpu_name": "GPU",
    "sm_clock_median_mhz": "SM clock, median (MHz)",
    "mem_clock_median_mhz": "memory clock, median (MHz)",
    "telemetry_runs": "runs with telemetry",
}


def provenance_notes(metrics: MetricsDocument) -> list[str]:
    """Warnings a reader must see before any number: CPU timings, an automatic fallback."""
    env = metrics.environment
    used = str(env.device_used or "")
    notes = []
    if env.device_requested == "auto" and used.startswith("cpu"):
        notes.append("device: auto fell back to CPU (no CUDA device was found).")
    if used.startswith("cpu"):
        notes.append(
            "These are CPU timings of the small preset: they show the pipeline and the "
            "model's structure, not GPU performance. Run with device: cuda for GPU numbers."
        )
    if env.device_error:
        notes.append(f"Device problem: {env.device_error}")
    return notes


def environment_table(metrics: MetricsDocument) -> pd.DataFrame:
    """Device, model, software versions and provenance of the run, one fact per row."""
    env, config = metrics.environment, metrics.config
    # The model spec as run: a mapping, as its fields grow (vlmprof.metrics.document).
    resolved = config.get("resolved", {})
    commit = env.git_commit
    if commit and env.git_dirty:
        commit = f"{commit} (with uncommitted changes)"
    rows = [
        ("run name", metrics.run_name),
        ("device requested", env.device_requested),
        ("device used", env.device_used),
        ("GPU", env.gpu_name or "none"),
        ("CPU", env.cpu_model),
        ("model preset", resolved.get("preset")),
        ("dtype", metrics.peaks.dtype),
        ("resolution mode", config.get("mode")),
        (
            "attention / experts kernels",
            f"{resolved.get('attn_implementation')} / {resolved.get('experts_implementation')}",
        ),
        ("driver", env.driver),
        ("CUDA", env.cuda_version),
        ("cuDNN", env.cudnn_version),
        ("python", env.python),
        *((package, env.packages[package]) for package in sorted(env.packages)),
        ("platform", env.platform),
        ("git commit", commit or "unknown (not run from a git checkout)"),
        ("config hash", metrics.config_hash),
    ]
    return pd.DataFrame(
        [(key, MISSING if value is None else str(value)) for key, value in rows],
        columns=["fact", "value"],
    )


def shards_table(metrics: MetricsDocument) -> pd.DataFrame:
    """Where each shard ran (metrics.json's environment.shards): device, GPU index, UUID and
    name, and the median clocks its runs' telemetry saw; empty for a run without them."""
    shards: list[ShardEnvironment] = metrics.environment.shards or []
    rows = [[dataclasses.asdict(shard)[key] for key in SHARD_COLUMNS] for shard in shards]
    # Object columns keep a GPU index an integer and a missing value None (shown as a dash).
    return pd.DataFrame(rows, columns=list(SHARD_COLUMNS.values()), dtype=object)


def benchmark_table(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """The pipeline's own cost per job; the notebooks' render jobs finish after the page
    is written, so theirs are left out."""
    return benchmarks[~benchmarks["job"].str.startswith("render_")].reset_index(drop=True)


def repeatability_table(metrics: MetricsDocument) -> pd.DataFrame:
    """Per stage, how far repeats of one page spread, against the configured tolerance."""
    rep = metrics.repeatability
    tolerance = 100.0 * rep.tolerance
    rows = [
        {
            "stage": display_name(stage),
            "pages": s.images,
            "max deviation from page mean (%)": as_percent(s.max_deviation),
            "max spread (%)": as_percent(s.max_spread),
            "mean CV (%)": as_percent(s.mean_cv),
            "worst page": s.worst_image,
            f"within +/-{tolerance:g}%": "pass" if s.passed else "FAIL",
        }
        for stage, s in sorted(rep.stages.items(), key=lambda item: _stage_order(item[0]))
    ]
    return pd.DataFrame(rows)


def _stage_order(stage: str) -> int:
    return STAGE_NAMES.index(stage) if stage in STAGE_NAMES else len(STAGE_NAMES)


def failed_pages_table(metrics: MetricsDocument, subset: pd.DataFrame) -> pd.DataFrame:
    """Pages with a failed record: image id, path, how many repeats failed and why (the
    page's path left out of the reason, as it has a column of its own)."""
    columns = ["image id", "path", "failed repeats", "reason"]
    failures = pd.DataFrame(
        [(f.image_id, f.repeat, f.error) for f in metrics.failures],
        columns=["image_id", "repeat", "error"],
    )
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


def run_config_yaml(metrics: MetricsDocument) -> str:
    """The run's configuration as a config file (the resolved device facts left out)."""
    config = {k: v for k, v in metrics.config.items() if k != "resolved"}
    return yaml.safe_dump(config, sort_keys=True)

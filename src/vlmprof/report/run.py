"""One run's outputs (results/<run_name>/) as the report reads them: metrics.json, the
tables, the records, static compute, the operator table, benchmarks and the comparison."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.metrics.document import MetricsDocument
from vlmprof.records import RunRecord, read_run_records

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
COMPARISON_FILE = Path("variants") / "comparison.json"


@dataclass
class RunOutputs:
    """Everything a report reads from one run folder."""

    run_dir: Path
    metrics: MetricsDocument
    stage_ms: pd.DataFrame
    mfu: pd.DataFrame
    mbu: pd.DataFrame
    per_image: pd.DataFrame
    per_category: pd.DataFrame
    subset: pd.DataFrame
    records: list[RunRecord]
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
    metrics = MetricsDocument.read(run_dir / "metrics.json")
    shards = sorted((run_dir / "runs").glob("shard-*.jsonl"))
    if not shards:
        raise FileNotFoundError(f"{run_dir / 'runs'}: no shard-*.jsonl run records; rerun it")
    operators_path = run_dir / "ops" / "operators.csv"
    operators = None
    if metrics.config["operators"]["enabled"]:
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
        records=read_run_records(shards),
        static=json.loads((run_dir / "static" / "static_compute.json").read_text("utf-8")),
        operators=operators,
        benchmarks=read_benchmarks(sorted((run_dir / "benchmarks").glob("*.tsv"))),
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


def arm_records(
    run_dir: str | Path, comparison: dict[str, Any] | None
) -> dict[str, list[RunRecord]]:
    """The run records of each arm of the variants comparison, the baseline first, by
    name (the control's are under variants/<name>/ like a variant's); only the baseline's
    without a comparison."""
    run_dir = Path(run_dir)
    folders = {(comparison or {}).get("baseline", "baseline"): run_dir}
    for entry in (comparison or {}).get("variants", []):
        folders.setdefault(entry["name"], run_dir / "variants" / entry["name"])
    return {
        name: read_run_records(sorted((folder / "runs").glob("shard-*.jsonl")))
        for name, folder in folders.items()
    }


def read_comparison(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's variants/comparison.json, or None when the run has none."""
    path = Path(run_dir) / COMPARISON_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

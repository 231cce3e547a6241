"""Two runs of the same pages, one GPU against several: do they agree, and how much sooner?

Usage: python benchmarks/scale_out_summary.py RESULTS_ONE_GPU RESULTS_MANY_GPUS
       [--tolerance 0.10] [--json out.json] [--table compare.md]

For each run folder: its shards, the device each shard's records name, and each shard's
job window (its end is the records file's modification time, its length the `s` column of
Snakemake's benchmark file, so model building is included). The profiling wall time is
the span from the first shard's start to the last one's end. Then the stage means of the
two runs through `vlmprof.compare` at `--tolerance`, and the ratio of the wall times.
Exit code 0 when every stage agrees, 1 when one does not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.compare import compare_dirs, to_markdown
from vlmprof.runtime.records import read_records


def shard_windows(run: Path) -> list[dict[str, Any]]:
    """Each shard's device, page count and job window (start/end in epoch seconds)."""
    shards = []
    for records_path in sorted((run / "runs").glob("shard-*.jsonl")):
        shard = records_path.stem.removeprefix("shard-")
        seconds = float(
            pd.read_csv(run / "benchmarks" / f"profile_shard-{shard}.tsv", sep="\t")["s"].iloc[0]
        )
        end = records_path.stat().st_mtime
        records = read_records([records_path])
        shards.append(
            {
                "shard": int(shard),
                "devices": sorted({str(r["device"]) for r in records}),
                "pages": len({r["image_id"] for r in records}),
                "records": len(records),
                "start": end - seconds,
                "end": end,
                "job_s": seconds,
            }
        )
    if not shards:
        raise SystemExit(f"{run}/runs: no shard-*.jsonl records; run the pipeline first")
    return shards


def profiling_wall_s(shards: list[dict[str, Any]]) -> float:
    """From the first shard job's start to the last one's end."""
    return max(s["end"] for s in shards) - min(s["start"] for s in shards)


def main() -> int:
    """Print each run's shards and wall time, the stage comparison and the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("one_gpu", type=Path)
    parser.add_argument("many_gpus", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--table", type=Path)
    args = parser.parse_args()
    runs = {"one_gpu": args.one_gpu, "many_gpus": args.many_gpus}
    summary: dict[str, Any] = {}
    for label, run in runs.items():
        shards = shard_windows(run)
        wall = profiling_wall_s(shards)
        summary[label] = {"run": str(run), "shards": shards, "profiling_wall_s": wall}
        origin = min(s["start"] for s in shards)
        print(f"{run}: profiling wall time {wall:.1f} s")
        for s in shards:
            print(
                f"  shard {s['shard']} on {','.join(s['devices'])}: {s['pages']} pages, "
                f"{s['records']} records, job {s['start'] - origin:+.1f} s to "
                f"{s['end'] - origin:+.1f} s ({s['job_s']:.1f} s)"
            )
    ratio = summary["many_gpus"]["profiling_wall_s"] / summary["one_gpu"]["profiling_wall_s"]
    summary["wall_ratio"] = ratio
    print(f"profiling wall time, many GPUs / one GPU: {ratio:.3f}")
    table, verdict = compare_dirs(args.one_gpu, args.many_gpus, args.tolerance)
    text = to_markdown(table, verdict, args.tolerance)
    print(text)
    summary["comparison"] = json.loads(table.to_json(orient="records"))
    summary["verdict"] = verdict
    if args.table:
        args.table.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())

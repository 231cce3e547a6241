"""Two runs of the same pages, one GPU against several: do they agree, and how much sooner?

Usage: python benchmarks/scale_out_summary.py RESULTS_ONE_GPU RESULTS_MANY_GPUS
       [--tolerance 0.10] [--json out.json] [--table compare.md]

For each run folder: its shards, the device each shard's records name, and each shard's
job window (its end is the records file's modification time, its length the `s` column of
Snakemake's benchmark file, so model building is included). The profiling wall time is
the span from the first shard's start to the last one's end; each shard's log says when
its first and last timed runs ended, which splits its window into start-up (process,
model, warm-up) and the pages themselves. Then the stage means of the two runs through
`vlmprof.compare` at `--tolerance`, the ratio of the wall times, and per stage the median
over pages of each page's median-run ratio (robust to a few slow runs).
Exit code 0 when every stage agrees, 1 when one does not.
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.compare import compare_dirs, to_markdown
from vlmprof.records import read_records

from bench_args import write_json

STAGES = ("prefill_ms", "vision_ms", "sam_ms", "clip_ms", "projector_ms", "decode_ms")


def timed_run_span(log: Path) -> tuple[float, float]:
    """Epoch seconds at which the shard's first and last timed runs were logged."""
    stamps = [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for line in log.read_text(encoding="utf-8").splitlines()
        if " repeat " in line
    ]
    if not stamps:
        raise SystemExit(f"{log}: no timed run logged")
    return stamps[0], stamps[-1]


def shard_records(run: Path) -> dict[str, list[dict[str, Any]]]:
    """Each shard's run records, by the shard number in its file name."""
    shards = {
        path.stem.removeprefix("shard-"): read_records([path])
        for path in sorted((run / "runs").glob("shard-*.jsonl"))
    }
    if not shards:
        raise SystemExit(f"{run}/runs: no shard-*.jsonl records; run the pipeline first")
    return shards


def shard_windows(run: Path, shards: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each shard's device, page count and job window (start/end in epoch seconds)."""
    windows = []
    for shard, records in shards.items():
        seconds = float(
            pd.read_csv(run / "benchmarks" / f"profile_shard-{shard}.tsv", sep="\t")["s"].iloc[0]
        )
        end = (run / "runs" / f"shard-{shard}.jsonl").stat().st_mtime
        first, last = timed_run_span(run / "logs" / f"profile_shard-{shard}.log")
        windows.append(
            {
                "shard": int(shard),
                "devices": sorted({str(r["device"]) for r in records}),
                "pages": len({r["image_id"] for r in records}),
                "records": len(records),
                "start": end - seconds,
                "end": end,
                "job_s": seconds,
                "startup_s": first - (end - seconds),
                "first_to_last_run_s": last - first,
            }
        )
    return windows


def profiling_wall_s(shards: list[dict[str, Any]]) -> float:
    """From the first shard job's start to the last one's end."""
    return max(s["end"] for s in shards) - min(s["start"] for s in shards)


def paired_page_ratios(
    records_a: list[dict[str, Any]], records_b: list[dict[str, Any]]
) -> dict[str, float]:
    """Per stage, the median over pages of (page's median run in B / in A)."""
    by_page: list[dict[str, list[dict[str, Any]]]] = []
    for records in (records_a, records_b):
        pages: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            if record["status"] == "ok":
                pages.setdefault(record["image_id"], []).append(record)
        by_page.append(pages)
    ratios = {}
    for stage in STAGES:
        per_page = [
            statistics.median(r[stage] for r in by_page[1][page])
            / statistics.median(r[stage] for r in by_page[0][page])
            for page in by_page[0].keys() & by_page[1].keys()
        ]
        ratios[stage] = statistics.median(per_page)
    return ratios


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
    records = {label: shard_records(run) for label, run in runs.items()}
    for label, run in runs.items():
        shards = shard_windows(run, records[label])
        wall = profiling_wall_s(shards)
        summary[label] = {"run": str(run), "shards": shards, "profiling_wall_s": wall}
        origin = min(s["start"] for s in shards)
        print(f"{run}: profiling wall time {wall:.1f} s")
        for s in shards:
            print(
                f"  shard {s['shard']} on {','.join(s['devices'])}: {s['pages']} pages, "
                f"{s['records']} records, job {s['start'] - origin:+.1f} s to "
                f"{s['end'] - origin:+.1f} s ({s['job_s']:.1f} s: start-up {s['startup_s']:.1f} s, "
                f"first to last timed run {s['first_to_last_run_s']:.1f} s)"
            )
    ratio = summary["many_gpus"]["profiling_wall_s"] / summary["one_gpu"]["profiling_wall_s"]
    summary["wall_ratio"] = ratio
    print(f"profiling wall time, many GPUs / one GPU: {ratio:.3f}")
    flat = {label: [r for shard in records[label].values() for r in shard] for label in runs}
    summary["paired_page_ratio"] = paired_page_ratios(flat["one_gpu"], flat["many_gpus"])
    for stage, ratio_b_a in summary["paired_page_ratio"].items():
        print(f"{stage}: median page, many GPUs / one GPU {ratio_b_a:.3f}")
    # The two runs differ in `shards` by design: forced, and the table's first line says
    # whether anything else differs.
    comparison = compare_dirs(args.one_gpu, args.many_gpus, args.tolerance, force=True)
    text = to_markdown(comparison, args.tolerance)
    print(text)
    summary["comparison"] = json.loads(comparison.table.to_json(orient="records"))
    summary["comparable"] = comparison.checked
    summary["verdict"] = comparison.verdict
    if args.table:
        args.table.write_text(text, encoding="utf-8")
    write_json(args.json, vars(args), summary)
    return 0 if comparison.verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())

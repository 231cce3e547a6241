"""Host time of each NVML query the telemetry sampler makes, on one GPU.

Usage: python benchmarks/nvml_read_cost.py [--device 0] [--reads 200] [--json out.json]

Runs every query of a sample `--reads` times in a row and prints its mean and p90 host time
in microseconds, and the cost of a whole sample as the sampler's thread takes it.
It says which fields make a reading slow.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pynvml

from vlmprof.device import resolve_placement
from vlmprof.runtime.nvml import nvml_handle
from vlmprof.runtime.nvml_sample import nvml_queries, nvml_value, sample_reader

from bench_args import write_json


def timed_us(read, reads: int) -> list[float]:
    """Host time of `reads` calls of `read`, in microseconds each."""
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        read()
        times.append((time.perf_counter() - start) * 1e6)
    return times


def main() -> None:
    """Time each query and whole samples; print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args()
    pynvml.nvmlInit()
    handle = nvml_handle(pynvml, resolve_placement(f"cuda:{args.device}", "auto"))
    queries = nvml_queries(pynvml, handle)
    rows = {}
    for name, query in queries.items():
        rows[name] = timed_us(lambda query=query: nvml_value(query), args.reads)
    read = sample_reader(queries, nvml_value)
    rows["whole sample"] = timed_us(read, args.reads)
    pynvml.nvmlShutdown()
    print(f"{'query':<24} {'mean us':>9} {'p90 us':>9}")
    summary = {}
    for name, times in rows.items():
        p90 = statistics.quantiles(times, n=10)[-1]
        summary[name] = {"mean_us": statistics.mean(times), "p90_us": p90}
        print(f"{name:<24} {statistics.mean(times):>9.1f} {p90:>9.1f}")
    write_json(args.json, vars(args), {"queries": summary})


if __name__ == "__main__":
    main()

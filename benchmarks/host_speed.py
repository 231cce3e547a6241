"""How steady the host is: the same fixed work, timed block after block.

Usage: python benchmarks/host_speed.py [--seconds 20] [--block-ms 50] [--device cuda]
       [--json out.json]

A stage launched from Python one kernel at a time runs at the host's pace, so it cannot be
more repeatable than the host itself. This times blocks of fixed work, each about
`--block-ms` long (the size of such a stage), for `--seconds` per workload, and prints each
workload's median block time, coefficient of variation, 5th/95th percentiles and extremes:

- "python": pure-Python arithmetic on one thread, no device;
- "launch" (on CUDA): tiny kernels launched one at a time, then one synchronisation: the
  shape of an eager, launch-bound stage with the model taken away.

A block count is fixed before timing, from a short calibration, so every block does the
same work.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from bench_args import write_json

CALIBRATION_S = 0.5


def python_unit() -> None:
    """A fixed piece of interpreter work: integer arithmetic in a loop."""
    total = 0
    for i in range(2000):
        total += i * i % 7


def launch_unit(x: torch.Tensor) -> Callable[[], None]:
    """A fixed piece of launch work: 20 tiny kernels on `x`'s device."""

    def unit() -> None:
        for _ in range(20):
            x.add_(1.0)

    return unit


def time_blocks(
    unit: Callable[[], None], sync: Callable[[], None], args: argparse.Namespace
) -> list[float]:
    """Each block's wall time in ms, every block `unit` called the same number of times."""
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < CALIBRATION_S:
        unit()
        calls += 1
    sync()
    per_unit_ms = (time.perf_counter() - start) * 1000.0 / calls
    units = max(1, round(args.block_ms / per_unit_ms))
    blocks: list[float] = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        block_start = time.perf_counter()
        for _ in range(units):
            unit()
        sync()
        blocks.append((time.perf_counter() - block_start) * 1000.0)
    return blocks


def summary(blocks: list[float]) -> dict[str, float]:
    """Median, CV, percentiles and extremes of the block times."""
    values = np.asarray(blocks)
    return {
        "blocks": len(blocks),
        "median_ms": float(np.median(values)),
        "cv": float(statistics.stdev(blocks) / statistics.fmean(blocks)),
        "p5_ms": float(np.percentile(values, 5)),
        "p95_ms": float(np.percentile(values, 95)),
        "min_ms": float(values.min()),
        "max_ms": float(values.max()),
    }


def main() -> None:
    """Time each workload and print its spread (JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="timing per workload")
    parser.add_argument("--block-ms", type=float, default=50.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args()
    workloads: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        "python": (python_unit, lambda: None)
    }
    if args.device.startswith("cuda"):
        x = torch.zeros(16, device=args.device)
        workloads["launch"] = (launch_unit(x), torch.cuda.synchronize)
    results = {}
    print(f"blocks of ~{args.block_ms:g} ms, {args.seconds:g} s per workload:")
    for name, (unit, sync) in workloads.items():
        result = summary(time_blocks(unit, sync, args))
        results[name] = result
        print(
            f"  {name:<7} {result['blocks']:>5} blocks, median {result['median_ms']:.2f} ms, "
            f"CV {result['cv']:.2%}, p5-p95 {result['p5_ms']:.2f}-{result['p95_ms']:.2f} ms, "
            f"min-max {result['min_ms']:.2f}-{result['max_ms']:.2f} ms"
        )
    write_json(args.json, vars(args), {"workloads": results})


if __name__ == "__main__":
    main()

"""Host time of each piece the timing pass adds to a run, one call at a time.

Usage: python benchmarks/instrument_host_cost.py [--device cuda] [--calls 2000]
       [--steps 64] [--json out.json]

Times, in microseconds per call on the host (the device stays idle): a stage-timer
interval's two marks (two CUDA events created and recorded, or two `perf_counter` reads)
and its read-back in `finish()`, over runs of as many intervals as a generation has; a
decode step's lap (one mark: back-to-back steps share their boundaries) and its read-back;
an NVTX push/pop pair; calling a module with the stage hooks against without them (the
hooks' own dispatch, no timer); resetting and reading the peak-memory statistics; and one
read of the host counters. Then, for a generation of `--steps` tokens, the sum the timing
pass pays per run: one lap per decode step, the stage intervals with their NVTX ranges,
three hooked modules and the per-run calls. On a run whose stages are launched from Python
one kernel at a time, the part inside the run's window adds to its wall time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from vlmprof.runtime.collector import collector_paused
from vlmprof.runtime.host_counters import read_host
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer

from bench_args import write_json

# Stage intervals besides the decode steps: ttft, prefill, decode, sam, clip, projector;
# all but ttft also open an NVTX range.
STAGE_INTERVALS = 6
NVTX_RANGES = 5
HOOKED_MODULES = 3


def per_call_us(action: Callable[[], object], calls: int) -> float:
    """Mean host time of `action` in microseconds, after a few untimed calls, with the
    garbage collector paused as in a timed run."""
    with collector_paused():
        for _ in range(10):
            action()
        start = time.perf_counter()
        for _ in range(calls):
            action()
        return (time.perf_counter() - start) / calls * 1e6


def intervals(timer: StageTimer, steps: int) -> None:
    """Time `steps` steps as intervals of their own: two marks each."""
    for _ in range(steps):
        timer.stop(timer.start("step"))


def laps(timer: StageTimer, steps: int) -> None:
    """Time `steps` steps as back-to-back laps: one mark each, and one to begin."""
    lap = timer.laps("step")
    for _ in range(steps):
        lap()


def marks_us(
    device: str, mark: Callable[[StageTimer, int], None], steps: int, runs: int
) -> tuple[float, float]:
    """Host time per step, in microseconds, of `mark` on a new timer and of reading its
    marks back in `finish()`, over `runs` runs of `steps` steps."""
    marks_s = read_back_s = 0.0
    with collector_paused():
        for _ in range(runs):
            timer = StageTimer(device)
            start = time.perf_counter()
            mark(timer, steps)
            marked = time.perf_counter()
            timer.finish()
            marks_s += marked - start
            read_back_s += time.perf_counter() - marked
    return marks_s / (runs * steps) * 1e6, read_back_s / (runs * steps) * 1e6


def main() -> None:
    """Print each piece's cost and the per-run sum (JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    calls = args.calls
    steps = args.steps - 1
    runs = max(1, calls // steps)
    costs: dict[str, float] = {}
    for name, mark in (("timer interval, two marks", intervals), ("timer lap, one mark", laps)):
        costs[name], costs[f"{name}: read-back"] = marks_us(args.device, mark, steps, runs)
    nvtx = NvtxRanges(enabled=True)
    costs["nvtx push+pop"] = per_call_us(lambda: (nvtx.push("step"), nvtx.pop()), calls)

    module = torch.nn.Sequential(torch.nn.Identity()).to(device)
    x = torch.zeros(1, device=device)
    plain = per_call_us(lambda: module(x), calls)
    hooks_only = Instruments(None, NvtxRanges(enabled=False))
    attach_stage_hooks(module, {"0": "stage"}, hooks_only)
    costs["hook dispatch per module call"] = per_call_us(lambda: module(x), calls) - plain
    if cuda:
        costs["reset_peak_memory_stats"] = per_call_us(torch.cuda.reset_peak_memory_stats, calls)
        costs["max_memory_allocated"] = per_call_us(torch.cuda.max_memory_allocated, calls)
    costs["read_host"] = per_call_us(read_host, calls)

    interval_us = costs["timer interval, two marks"] + costs["timer interval, two marks: read-back"]
    lap_us = costs["timer lap, one mark"] + costs["timer lap, one mark: read-back"]
    per_run_us = (
        steps * lap_us
        + STAGE_INTERVALS * interval_us
        + NVTX_RANGES * costs["nvtx push+pop"]
        + HOOKED_MODULES * costs["hook dispatch per module call"]
        + costs.get("reset_peak_memory_stats", 0.0)
        + costs.get("max_memory_allocated", 0.0)
        + 2 * costs["read_host"]
    )
    print(f"host cost per call on {device} (torch {torch.__version__}), {calls} calls each:")
    for name, us in costs.items():
        print(f"  {name:<40} {us:8.2f} us")
    print(
        f"per run of {args.steps} tokens ({steps} laps, {STAGE_INTERVALS} intervals, "
        f"{HOOKED_MODULES} hooked modules): {per_run_us / 1000:.3f} ms"
    )
    write_json(args.json, vars(args), {"per_call_us": costs, "per_run_ms": per_run_us / 1000})


if __name__ == "__main__":
    main()

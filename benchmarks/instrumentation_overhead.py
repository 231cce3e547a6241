"""End-to-end cost of the timing instruments and of the telemetry sampler.

Usage: python benchmarks/instrumentation_overhead.py [--preset full] [--device cuda]
       [--pages 3] [--rounds 3] [--warmup 2] [--tokens 64] [--mode gundam]
       [--experts eager|grouped_mm|batched_mm] [--decode eager|static|cuda_graph]
       [--arms bare,events,hooks,nvtx,instrumented,telemetry]

Every arm runs the same pages and token counts after `--warmup` rounds, in orders that
give each arm every position and every predecessor equally often. Each arm adds one thing
to the arm before it: "bare" is the greedy loop with no timer, NVTX or hooks; "events"
adds the stage timer (CUDA events or perf_counter per stage and per decode step); "hooks"
adds the forward hooks on sam/clip/projector; "nvtx" adds the NVTX ranges; "instrumented"
is exactly what the timing pass runs (`timed_run`: the same, plus peak-memory and host
counters); "telemetry" is that with the NVML poller running, as in a profiling shard (only
where NVML sees the GPU). The poller is started for the telemetry arm's runs of a round
and closed after them, so no other arm runs beside it. Every arm runs with Python's
garbage collector paused, as the timing pass does.

Two host-clock times per run, both read after synchronising: the run's window, from just
before the first launch to the device finishing the last token (for the timing pass, its
record's `host.wall_ms`), which is what the instruments can slow down; and the whole call,
which adds the bookkeeping before and after the window (attaching hooks, reading the
marks back, peak memory, the poller's readings) that only lengthens the profiling job.
Prints, for each arm over the one it builds on and for both times, the median of the
per-pair overheads and the overhead of the summed times with its 95% interval over the
pairs (the comparison engine's; none below 8 pairs); the targets are at most 1% for the
instruments (instrumented vs bare) and below 0.5% for the sampler (telemetry vs
instrumented).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.device import resolve_placement
from vlmprof.models import build_adapter
from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.runtime.collector import collector_paused
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer
from vlmprof.runtime.telemetry import TelemetrySampler
from vlmprof.runtime.timed_run import telemetry_sampler, timed_run
from vlmprof.variants.paired import paired_ratio

from bench_args import (
    add_model_arguments,
    balanced_orders,
    model_spec,
    profile_settings,
    write_json,
)

# Comparisons printed, each for the run's window and the whole call: (arm, its baseline).
COMPARED = [
    ("events", "bare"),
    ("hooks", "events"),
    ("nvtx", "hooks"),
    ("instrumented", "nvtx"),
    ("instrumented", "bare"),
    ("telemetry", "instrumented"),
]
ARMS = ("bare", "events", "hooks", "nvtx", "instrumented", "telemetry")

# The page shapes measured, in turn: a run's work depends on its page's shape only.
SIZES = [
    size
    for size in PAGE_SIZES
    if size.name in ("a4_150dpi", "letter_150dpi", "slide_16x9", "receipt")
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def loop_ms(
    adapter: ModelAdapter,
    inputs: ModelInputs,
    tokens: int,
    timed: bool = False,
    hooks: bool = False,
    nvtx: bool = False,
) -> tuple[float, float]:
    """Whole call and run window (ms) of the greedy loop with the chosen instruments: the
    stage timer, the stage hooks, NVTX ranges (hooks and NVTX open stages on the timer, so
    they need `timed`)."""
    _sync(adapter.device)
    with collector_paused():
        start = time.perf_counter()
        timer = StageTimer(str(adapter.device)) if timed else None
        instruments = Instruments(timer, NvtxRanges(enabled=nvtx))
        handles = (
            attach_stage_hooks(adapter.module, adapter.stage_modules(), instruments)
            if hooks
            else []
        )
        window_start = time.perf_counter()
        greedy_generate(adapter, inputs, tokens, instruments)
        _sync(adapter.device)
        window_ms = (time.perf_counter() - window_start) * 1000.0
        if timer is not None:
            timer.finish()
        detach(handles)
        return (time.perf_counter() - start) * 1000.0, window_ms


def instrumented_ms(
    adapter: ModelAdapter,
    inputs: ModelInputs,
    tokens: int,
    sampler: TelemetrySampler | None = None,
) -> tuple[float, float]:
    """Whole call and run window (ms) of the timing pass's own run (timer, NVTX, stage
    hooks, and a sampler); the window is the record's `host.wall_ms`."""
    settings = profile_settings("overhead", max_new_tokens=tokens)
    _sync(adapter.device)
    start = time.perf_counter()
    timing = timed_run(adapter, [inputs], settings, NvtxRanges(enabled=True), sampler)
    _sync(adapter.device)
    return (time.perf_counter() - start) * 1000.0, timing["host"]["wall_ms"]


def _overhead(pairs: np.ndarray) -> dict[str, object]:
    """Median per-pair overhead and the summed times' overhead with its 95% interval over
    the pairs (the comparison engine's; interleaved arms share their drift), of (baseline,
    arm) time pairs."""
    pair = paired_ratio(pairs[:, 1], pairs[:, 0])
    low, high = pair.low, pair.high
    return {
        "median_pair": statistics.median(pairs[:, 1] / pairs[:, 0] - 1.0),
        "total": pairs[:, 1].sum() / pairs[:, 0].sum() - 1.0,
        "total_95": [None if low is None else low - 1.0, None if high is None else high - 1.0],
    }


def main() -> None:
    """Measure and print the overhead table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds over all arms")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--counter-interval-ms", type=float, default=500.0)
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated arms to run")
    args = parser.parse_args()
    chosen = args.arms.split(",")
    if unknown := sorted(set(chosen) - set(ARMS)):
        parser.error(f"--arms: unknown {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    spec = model_spec(args)
    adapter = build_adapter(spec)
    placement = resolve_placement(spec.device, spec.dtype)
    settings = profile_settings(
        "overhead",
        telemetry_interval_ms=args.interval_ms,
        telemetry_counter_interval_ms=args.counter_interval_ms,
    )
    tokens = args.tokens
    arms = {
        "bare": lambda item: loop_ms(adapter, item, tokens),
        "events": lambda item: loop_ms(adapter, item, tokens, timed=True),
        "hooks": lambda item: loop_ms(adapter, item, tokens, timed=True, hooks=True),
        "nvtx": lambda item: loop_ms(adapter, item, tokens, timed=True, hooks=True, nvtx=True),
        "instrumented": lambda item: instrumented_ms(adapter, item, tokens),
    }
    with telemetry_sampler(placement, settings) as probe:
        sampler_reason = None if probe.available else probe.reason

    def run_arm(name: str, items: list[ModelInputs]) -> list[tuple[float, float]]:
        if name != "telemetry":
            return [arms[name](item) for item in items]
        with telemetry_sampler(placement, settings) as sampler:
            return [instrumented_ms(adapter, item, tokens, sampler) for item in items]

    names = [name for name in chosen if name != "telemetry" or not sampler_reason]
    pages = [render_page("text_heavy", SIZES[i % len(SIZES)], 0, i) for i in range(args.pages)]
    inputs = [adapter.preprocess(p).to(adapter.device, adapter.dtype) for p in pages]
    for _ in range(args.warmup):
        for name in names:
            run_arm(name, inputs)
    rows = [{"round": r, "page": p} for r in range(args.rounds) for p in range(len(inputs))]
    orders = balanced_orders(names)
    for round_index in range(args.rounds):
        for name in orders[round_index % len(orders)]:
            for page_index, (call, window) in enumerate(run_arm(name, inputs)):
                row = rows[round_index * len(inputs) + page_index]
                row[name], row[f"{name}:run"] = call, window
    overheads = {}
    for after, before in COMPARED:
        if after in names and before in names:
            for time_name, suffix in (("run window", ":run"), ("whole call", "")):
                pairs = np.array([[row[before + suffix], row[after + suffix]] for row in rows])
                overheads[f"{after} vs {before}, {time_name}"] = _overhead(pairs)
    print(
        f"{args.preset} preset on {adapter.device} ({adapter.dtype}), mode {args.mode}, "
        f"experts {args.experts}, decode {args.decode}, {args.tokens} tokens, "
        f"{args.pages} pages x {args.rounds} rounds"
        + (f"; telemetry arm skipped: {sampler_reason}" if sampler_reason else "")
    )
    columns = [name + suffix for name in names for suffix in (":run", "")]
    print(" ".join([f"{'round':>5}", f"{'page':>4}"] + [f"{c + ' ms':>18}" for c in columns]))
    for row in rows:
        cells = [f"{row['round']:>5}", f"{row['page']:>4}"]
        print(" ".join(cells + [f"{row[c]:>18.1f}" for c in columns]))
    for label, value in overheads.items():
        low, high = value["total_95"]
        interval = "" if low is None else f" (95% interval {low:+.2%} to {high:+.2%})"
        print(
            f"overhead, {label}: median pair {value['median_pair']:+.2%}, "
            f"total {value['total']:+.2%}{interval}"
        )
    print("targets: instrumented vs bare at most 1%; telemetry vs instrumented below 0.5%")
    write_json(args.json, vars(args), {"rows": rows, "overhead": overheads})


if __name__ == "__main__":
    main()

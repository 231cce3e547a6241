"""End-to-end cost of the timing instruments: bare generate loop vs fully instrumented run.

Usage: python benchmarks/instrumentation_overhead.py [--preset full] [--device cuda]
       [--pages 3] [--rounds 3] [--tokens 64] [--mode gundam]

Both variants run the same pages and token counts, alternating, after a warmup. "bare" is
the greedy loop with no timer, NVTX or hooks; "instrumented" is exactly what the timing
pass runs (CUDA events or perf_counter per stage and per decode step, NVTX ranges, forward
hooks on sam/clip/projector). Wall time is read with a host clock after synchronising.
Prints the median overhead; the target is at most 1%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from PIL import Image, ImageDraw

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.profile_shard import ProfileSettings, timed_run

PAGE_SIZES = [(1240, 1754), (1275, 1650), (1600, 900), (600, 2000)]


def _page(size: tuple[int, int], seed: int) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for row in range(40, size[1] - 40, 24):
        draw.line((60, row, size[0] - 60 - (row * seed) % 200, row), fill=(30, 30, 30), width=6)
    return image


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_ms(adapter: ModelAdapter, inputs: ModelInputs, tokens: int) -> float:
    """Wall time of the greedy loop with no instruments at all."""
    _sync(adapter.device)
    start = time.perf_counter()
    greedy_generate(adapter, inputs, tokens, Instruments(None, NvtxRanges(enabled=False)))
    _sync(adapter.device)
    return (time.perf_counter() - start) * 1000.0


def instrumented_ms(adapter: ModelAdapter, inputs: ModelInputs, tokens: int) -> float:
    """Wall time of the timing pass's own run (timer, NVTX, stage hooks)."""
    settings = ProfileSettings(run_id="overhead", shard=0, max_new_tokens=tokens)
    _sync(adapter.device)
    start = time.perf_counter()
    timed_run(adapter, inputs, settings, NvtxRanges(enabled=True))
    _sync(adapter.device)
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    """Measure and print the overhead table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--mode", default="gundam")
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args()
    spec = ModelSpec(preset=args.preset, device=args.device, dtype=args.dtype, mode=args.mode)
    adapter = build_adapter(spec)
    pages = [_page(PAGE_SIZES[i % len(PAGE_SIZES)], i) for i in range(args.pages)]
    inputs = [adapter.preprocess(p).to(adapter.device, adapter.dtype) for p in pages]
    for item in inputs:  # warmup, both paths
        bare_ms(adapter, item, args.tokens)
        instrumented_ms(adapter, item, args.tokens)
    ratios, rows = [], []
    for round_index in range(args.rounds):
        for page_index, item in enumerate(inputs):
            order = (
                (bare_ms, instrumented_ms) if round_index % 2 == 0 else (instrumented_ms, bare_ms)
            )
            result = {fn.__name__: fn(adapter, item, args.tokens) for fn in order}
            ratios.append(result["instrumented_ms"] / result["bare_ms"] - 1.0)
            rows.append({"round": round_index, "page": page_index, **result})
    overhead = statistics.median(ratios)
    print(
        f"{args.preset} preset on {adapter.device} ({adapter.dtype}), mode {args.mode}, "
        f"{args.tokens} tokens, {args.pages} pages x {args.rounds} rounds"
    )
    print(f"{'round':>5} {'page':>4} {'bare ms':>10} {'instrumented ms':>16} {'overhead':>9}")
    for row, ratio in zip(rows, ratios, strict=True):
        print(
            f"{row['round']:>5} {row['page']:>4} {row['bare_ms']:>10.1f} "
            f"{row['instrumented_ms']:>16.1f} {ratio:>9.2%}"
        )
    print(f"median overhead: {overhead:.2%} (target: at most 1%)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "rows": rows, "median_overhead": overhead}, handle)


if __name__ == "__main__":
    main()

"""Per-stage CPU times of the `small` preset on one page, single-threaded.

Usage: python benchmarks/model_stages_cpu.py [--mode gundam] [--tokens 32] [--repeats 5]
Prints mean and min of each stage over the repeats (after one warmup) and checks the
target: one page's prefill plus 32 decode tokens well under 2 s on one CPU core.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from PIL import Image

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer


def main() -> None:
    """Time every stage of the small preset on an A4 page and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", default="gundam")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adapter = build_adapter(ModelSpec(preset="small", mode=args.mode))
    page = Image.new("RGB", (1240, 1754), "white")
    inputs = adapter.preprocess(page)
    times: dict[str, list[float]] = {}
    for repeat in range(args.repeats + 1):
        timer = StageTimer("cpu")
        instruments = Instruments(timer, NvtxRanges(enabled=False))
        handles = attach_stage_hooks(adapter.module, adapter.stage_modules(), instruments)
        greedy_generate(adapter, inputs, args.tokens, instruments)
        detach(handles)
        timer.finish()
        if repeat == 0:
            continue  # warmup
        for stage in ("sam", "clip", "projector", "prefill", "decode"):
            times.setdefault(stage, []).append(timer.total_ms(stage) or 0.0)
    print(
        f"small preset, mode {args.mode}, {inputs.n_crops} crops, prefill_len "
        f"{inputs.prefill_len}, {args.tokens} tokens, {args.threads} thread(s)"
    )
    print(f"{'stage':<10}{'mean ms':>10}{'min ms':>10}")
    for stage, values in times.items():
        print(f"{stage:<10}{statistics.mean(values):>10.1f}{min(values):>10.1f}")
    total = statistics.mean(a + b for a, b in zip(times["prefill"], times["decode"], strict=True))
    print(f"prefill + decode: {total:.0f} ms (target: well under 2000 ms)")


if __name__ == "__main__":
    main()

"""The operator pass on one `small`-preset page on CPU: top operators and stage verdicts.

Usage: python benchmarks/operator_profile_cpu.py [--mode base] [--tokens 8] [--threads 1]
Runs the same pass as the workflow (warmup, torch.profiler with stage labels) into a
temporary folder and prints the ten heaviest operators by self CPU time, the category
rollup and each stage's timeline verdict.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from PIL import Image, ImageDraw

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.profiler.operator_profile import run_operator_profile

TOP_COLUMNS = ["operator", "category", "calls", "self (ms)", "stage", "share of stage"]


def main() -> None:
    """Profile one A4 page and print the tables a reader would quote."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", default="base")
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adapter = build_adapter(ModelSpec(preset="small", mode=args.mode))
    page = Image.new("RGB", (1240, 1754), "white")
    ImageDraw.Draw(page).multiline_text((80, 80), "\n".join(["Lorem ipsum dolor"] * 40), "black")
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        summary = run_operator_profile(adapter, [("page", page)], args.tokens, 1, Path(scratch))
        seconds = time.perf_counter() - start
        table = pd.read_csv(Path(scratch) / "operators.csv")
    share = summary["attribution"]["attributed_share"]
    print(
        f"small preset, mode {args.mode}, {args.tokens} tokens, {args.threads} thread(s); "
        f"pass took {seconds:.1f} s; {share:.2%} of operator self CPU time attributed"
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table[TOP_COLUMNS].head(10).to_string(index=False, float_format="{:.3f}".format))
        print()
        print(pd.Series(summary["categories_ms"], name="self (ms)").round(3).to_string())
        print()
        timeline = pd.DataFrame(summary["timeline"]).T
        columns = ["wall_ms", "busy_fraction", "launches", "mean_kernel_us", "idle_gaps"]
        print(timeline[[*columns, "verdict"]].to_string(float_format="{:.3f}".format))


if __name__ == "__main__":
    main()

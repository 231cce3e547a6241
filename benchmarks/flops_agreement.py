"""Full-preset agreement of analytic FLOPs with FlopCounterMode and fvcore, every stage.

Too slow for the test suite (fvcore traces the full SAM on the CPU): run it by hand,
    python benchmarks/flops_agreement.py OUT_DIR [MODE ...]
It writes OUT_DIR/static_compute.{json,md}, prints one line per stage and exits 1 if a
FlopCounterMode count is off by more than 1% or an fvcore gap above 2% is unexplained.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vlmprof.atomic import write_text_atomic
from vlmprof.flops.static_compute import build_static_compute, static_compute_markdown
from vlmprof.models.deepseek_ocr.dims import PRESETS
from vlmprof.models.deepseek_ocr.views import MODES

from bench_args import write_json

FLOPCOUNTERMODE_TOLERANCE = 0.01
PREFILL_LEN = 920  # a gundam page with 6 crops (903 image tokens) and its prompt
DECODE_CONTEXT = 1920  # that page after 1000 generated tokens


def main(argv: list[str]) -> int:
    """Build the full-preset report with counts, write it, print and check agreement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path, help="folder for static_compute.{json,md}")
    parser.add_argument("modes", nargs="*", help=f"any of {', '.join(MODES)}; default: all")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    out = args.out
    modes = args.modes or list(MODES)
    start = time.perf_counter()
    report = build_static_compute(PRESETS["full"], modes, PREFILL_LEN, DECODE_CONTEXT, "bfloat16")
    seconds = time.perf_counter() - start
    settings = {"modes": modes, "prefill_len": PREFILL_LEN, "decode_context": DECODE_CONTEXT}
    write_json(out / "static_compute.json", settings, report)
    write_text_atomic(out / "static_compute.md", static_compute_markdown(report))
    failures = []
    for name, entry in report["stages"].items():
        fcm, fv = entry["rel_diff_flopcountermode"], entry["rel_diff_fvcore"]
        gap = entry["fvcore_gap"]
        print(
            f"{name:16s} analytic {entry['analytic'] / 1e9:12.3f} GFLOP  "
            f"FlopCounterMode {100 * fcm:+7.3f}%  fvcore {100 * fv:+7.2f}%  "
            f"fvcore explained {100 * gap['rel_diff_after']:+7.3f}%"
        )
        if abs(fcm) > FLOPCOUNTERMODE_TOLERANCE or not gap["explained"]:
            failures.append(name)
    print(f"counted in {seconds:.0f} s; disagreeing stages: {failures or 'none'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

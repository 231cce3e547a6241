"""Traffic of one page counted op by op on the real modules (CPU): its bytes as implemented,
beside the necessary bytes the analytic model gives (what MBU divides by).

The page is the one benchmarks/ncu_bytes.sh profiles (full preset, gundam: the 1024 global
view and 6 crops of 640, a 912-token prompt, one decode step over 913 positions, bfloat16),
so its counted reads and writes can be set beside Nsight Compute's DRAM bytes: with caches
flushed before each kernel, ncu reads every input from DRAM, as the counter assumes.
    python benchmarks/counted_bytes.py [--json FILE] [--preset full] [--crops 6] ...
Prints one row per stage (necessary MB; counted MB of the matmul-class ops and of the rest,
whose sum is the bytes as implemented; counted reads and writes) and the ops that move the
most outside the matmul class; `--sam-attention folded` counts the variant switch of that
name. The decoder is counted on its eager experts (the baseline's), layers scaled as the
counted FLOPs are. About a minute on two CPU cores; needs about 3 GB of memory.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from vlmprof.flops.analytic import decode_step_cost, llm_prefill_cost, vision_cost
from vlmprof.flops.counted_bytes import MATMUL_OPS, ByteCount, decoder_bytes, vision_bytes
from vlmprof.models.deepseek_ocr.dims import PRESETS
from vlmprof.models.deepseek_ocr.model import build_module
from vlmprof.models.deepseek_ocr.views import MODES
from vlmprof.models.sam_attention import fold_relative_positions

from bench_args import write_json

BYTES_PER_ELEMENT = 2  # bfloat16
TOP_OPS = 8


def _row(stage: str, necessary: float, counted: ByteCount) -> dict[str, Any]:
    total = counted.total
    return {
        "stage": stage,
        "necessary bytes": necessary,
        "bytes as implemented": total.total,
        "counted matmul-class bytes": counted.matmul.total,
        "counted other bytes": counted.other.total,
        "counted read bytes": total.read,
        "counted write bytes": total.write,
        "counted weight bytes": total.weights,
        "top other ops": {
            op: moved.total
            for op, moved in sorted(counted.by_op.items(), key=lambda item: -item[1].total)
            if not MATMUL_OPS.match(op) and moved.total >= 0.5e6
        },
    }


def page_rows(
    preset: str, mode: str, crops: int, prefill_len: int, sam_attention: str = "bias"
) -> list[dict[str, Any]]:
    """Necessary (analytic) and counted traffic of each stage of one page (SAM's relative
    positions as a bias, as released, or folded into the query-key product)."""
    dims = PRESETS[preset]
    model = build_module(dims, "meta", torch.bfloat16)
    if sam_attention == "folded":
        fold_relative_positions(model)
    spec = MODES[mode]
    counted = vision_bytes(model, dims, spec.base_size, spec.image_size, crops)
    counted["llm_prefill"] = decoder_bytes(model, dims, prefill_len, prefill_len)
    counted["prefill"] = counted["vision"] + counted["llm_prefill"]
    counted["decode_step"] = decoder_bytes(model, dims, 1, prefill_len + 1)
    costs = vision_cost(dims, mode, crops, BYTES_PER_ELEMENT)
    necessary = {stage: cost.necessary_bytes for stage, cost in costs.items()}
    prefill = llm_prefill_cost(dims, prefill_len, BYTES_PER_ELEMENT)
    necessary["llm_prefill"] = prefill.necessary_bytes
    necessary["prefill"] = necessary["vision"] + necessary["llm_prefill"]
    step = decode_step_cost(dims, prefill_len + 1, BYTES_PER_ELEMENT)
    necessary["decode_step"] = step.necessary_bytes
    return [_row(stage, necessary[stage], counted[stage]) for stage in counted]


def table_text(rows: list[dict[str, Any]]) -> str:
    """The rows as Markdown, MB = 1e6 bytes."""
    lines = [
        "| stage | necessary MB | as implemented MB | counted matmul-class MB | counted other MB "
        "| counted read MB | counted write MB | largest other ops (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        top = ", ".join(
            f"{op} {moved / 1e6:,.0f}" for op, moved in list(r["top other ops"].items())[:TOP_OPS]
        )
        lines.append(
            f"| {r['stage']} | {r['necessary bytes'] / 1e6:,.1f} | "
            f"{r['bytes as implemented'] / 1e6:,.1f} | "
            f"{r['counted matmul-class bytes'] / 1e6:,.1f} | "
            f"{r['counted other bytes'] / 1e6:,.1f} | {r['counted read bytes'] / 1e6:,.1f} | "
            f"{r['counted write bytes'] / 1e6:,.1f} | {top} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Count the page and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", choices=sorted(PRESETS))
    parser.add_argument("--mode", default="gundam", choices=sorted(MODES))
    parser.add_argument("--crops", type=int, default=6)
    parser.add_argument("--prefill-len", type=int, default=912)
    parser.add_argument("--sam-attention", default="bias", choices=("bias", "folded"))
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    rows = page_rows(args.preset, args.mode, args.crops, args.prefill_len, args.sam_attention)
    print(
        f"{args.preset} preset, {args.mode}, {args.crops} crops, prefill {args.prefill_len} "
        f"tokens, bfloat16, SAM attention {args.sam_attention}: bytes per stage"
    )
    print(table_text(rows))
    write_json(args.json, vars(args), {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

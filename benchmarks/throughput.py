"""Output tokens/s and pages/s end to end (GPU side and decode only beside them) and cost per
1,000 pages at several batch sizes, through the timing pass's own loop, each batch size's
outputs judged by the gate against batch 1.

Usage: python benchmarks/throughput.py OUT_DIR [--preset full] [--device cuda]
       [--dtype bfloat16] [--tokens 256] [--pages 64] [--batches 1,8,32,64]
       [--baseline-pages 8] [--baseline-batches 1,8] [--workers 4] [--gpu-hour-price P]

Two arms on synthetic pages in gundam mode: `best` (grouped experts, graphed decode, SAM's
folded relative positions, vision replayed from CUDA graphs; on a CPU a static KV cache and
eager vision instead) at each of --batches on --pages pages, and `baseline` (the released
code path: expert loop, eager decode) at each of --baseline-batches on the first
--baseline-pages of them. Each (arm, batch size), in a process of its own (no two models'
CUDA graphs in one process), builds the model and runs `profile_images` (one repeat; the
best arm's pages warmed by their untimed reference generation, which the gate compares, the
baseline's by the shard's warm-up only) and aggregates its records as the pipeline does.
Then the best arm's batch size with the most GPU-side pages/s runs again with --workers
processes loading and preprocessing ahead: the end-to-end rates count each batch's wait for
its pages, inline and overlapped. A batch that runs out of memory is recorded as not
fitting. The cost per 1,000 pages is the pipeline's (`metrics.cost`) at --tokens output tokens
per page, priced at --gpu-hour-price (an assumption the user passes). Writes
OUT_DIR/throughput.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from vlmprof.data.manifest import load_manifest
from vlmprof.data.synthetic_pages import generate_synthetic_pages
from vlmprof.metrics.aggregate import aggregate_records
from vlmprof.metrics.cost import cost_section
from vlmprof.models import ModelSpec
from vlmprof.runtime.launcher import launched_model
from vlmprof.runtime.profile_shard import profile_images
from vlmprof.variants.gate import judge_variant

from bench_args import in_own_process, profile_settings, write_json

ARMS = {
    "best": {
        "experts_implementation": "grouped_mm",
        "decode": "cuda_graph",
        "sam_attention": "folded",
        "vision": "cuda_graph",
    },
    "baseline": {},
}
# What the best arm runs instead of its CUDA graphs on a CPU (a smoke test of the script).
OFF_CUDA = {"decode": "static", "vision": "eager"}
GATE_TOLERANCE = 0.02


def arm_switches(arm: str, device: str) -> dict[str, Any]:
    """The arm's model switches on `device` (CUDA graphs only where there is CUDA)."""
    switches = dict(ARMS[arm])
    if arm == "best" and not device.startswith("cuda"):
        switches.update(OFF_CUDA)
    return switches


def _numbers(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item]


def _mean(aggregates: dict[str, Any], key: str) -> float | None:
    return (aggregates.get(key) or {}).get("mean")


def measure(
    arm: str,
    spec: ModelSpec,
    shape: tuple[int, int],
    images: list[tuple[str, Path]],
    tokens: int,
    price: float | None,
    out_dir: Path,
) -> dict[str, Any]:
    """One (arm, (batch size, workers)): its records aggregated, cost and wall time. The
    best arm warms every batch with its untimed reference generation (kept for the gate);
    the baseline, whose eager decode is slow, has the shard's warm-up only and no gate. Run
    it in a process of its own (`in_own_process`)."""
    batch_size, workers = shape
    label = f"{arm}-b{batch_size}-w{workers}"
    gated = arm == "best"
    settings = profile_settings(
        label,
        repeats=1,
        max_new_tokens=tokens,
        warmup_rounds=1,
        warmup_per_image=gated,
        batch_size=batch_size,
        workers=workers,
    )
    records_path = out_dir / f"{label}.jsonl"
    outputs_path = out_dir / f"{label}.pt" if gated else None
    start = time.perf_counter()
    with launched_model(spec) as (adapter, placement):
        profile_images(adapter, placement, images, settings, records_path, outputs_path)
    wall_s = time.perf_counter() - start
    records = [json.loads(line) for line in records_path.read_text().splitlines()]
    summary = aggregate_records(records)
    aggregates = summary["aggregates"]
    stage = aggregates["stage_ms"]
    return {
        "arm": arm,
        "batch_size": batch_size,
        "workers": workers,
        "pages": len(images),
        "records_ok": summary["counts"]["ok"],
        "errors": sorted({f["error"] for f in summary["failures"]}),
        "output_tokens_per_s_end_to_end": aggregates["output_tokens_per_s_end_to_end"],
        "output_tokens_per_s_gpu_side": aggregates["output_tokens_per_s_gpu_side"],
        "decode_tokens_per_s": aggregates["decode_tokens_per_s"],
        "pages_per_s_end_to_end": aggregates["pages_per_s_end_to_end"],
        "pages_per_s_gpu_side": aggregates["pages_per_s_gpu_side"],
        "prefill_ms": _mean(stage, "prefill"),
        "decode_step_ms": _mean(stage, "decode_per_token"),
        "input_wait_ms": [r.get("input_wait_ms") for r in records if r["repeat"] == 0],
        "cost": cost_section(
            records,
            aggregates,
            {"available": False},
            {"output_tokens": tokens, "gpu_hour_price": price},
        ),
        "wall_s": wall_s,
        "outputs": None if outputs_path is None else str(outputs_path),
    }


def judged(results: list[dict[str, Any]]) -> None:
    """Each batch size's outputs judged against the same arm's batch 1 (in place)."""
    for result in results:
        lone = next(
            (r for r in results if r["arm"] == result["arm"] and r["batch_size"] == 1), None
        )
        if lone is None or result is lone or not result["records_ok"] or not result["outputs"]:
            continue
        baseline, variant = torch.load(lone["outputs"]), torch.load(result["outputs"])
        verdict = judge_variant(f"batch {result['batch_size']}", baseline, variant, GATE_TOLERANCE)
        kept = ("status", "pages", "pages_identical", "criterion", "detail")
        result["gate"] = {k: verdict.get(k) for k in kept}


def _line(r: dict[str, Any]) -> str:
    """One result as a line of the printed table."""
    return (
        f"{r['arm']:>8} batch {r['batch_size']:>3} workers {r['workers']}: "
        f"{r['output_tokens_per_s_end_to_end'] or 0:,.0f} output tokens/s end to end "
        f"({r['pages_per_s_end_to_end'] or 0:.2f} pages/s), GPU side "
        f"{r['output_tokens_per_s_gpu_side'] or 0:,.0f} ({r['pages_per_s_gpu_side'] or 0:.2f} "
        f"pages/s), decode only {r['decode_tokens_per_s'] or 0:,.0f} tokens/s, "
        f"{r['records_ok']}/{r['pages']} ok, gate {r.get('gate', {}).get('status', '-')}"
        + (f", {r['errors'][0]}" if r["errors"] else "")
    )


def main() -> None:
    """Run the arms, then the end-to-end arm, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--batches", default="1,8,32,64")
    parser.add_argument("--baseline-pages", type=int, default=8)
    parser.add_argument("--baseline-batches", default="1,8")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--gpu-hour-price", type=float, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = generate_synthetic_pages(args.out / "pages", n_pages=args.pages)
    frame = load_manifest(manifest)
    images = [(row.image_id, Path(row.path)) for row in frame.itertuples()]
    base = ModelSpec(preset=args.preset, device=args.device, dtype=args.dtype)
    plan = [("best", b, images) for b in _numbers(args.batches)]
    few = images[: args.baseline_pages]
    plan += [("baseline", b, few) for b in _numbers(args.baseline_batches)]
    results = []
    price = args.gpu_hour_price
    for arm, batch, pages in plan:
        spec = ModelSpec(**{**vars(base), **arm_switches(arm, args.device)})
        args_of_run = (arm, spec, (batch, 0), pages, args.tokens, price, args.out)
        results.append(in_own_process(measure, *args_of_run))
        print(_line(results[-1]), flush=True)
    fitted = [r for r in results if r["arm"] == "best" and r["records_ok"] == r["pages"]]
    if fitted and args.workers:
        best = max(fitted, key=lambda r: r["pages_per_s_gpu_side"] or 0.0)
        spec = ModelSpec(**{**vars(base), **arm_switches("best", args.device)})
        shape = (best["batch_size"], args.workers)
        results.append(
            in_own_process(measure, "best", spec, shape, images, args.tokens, price, args.out)
        )
    judged(results)
    arguments = {**vars(args), "out": str(args.out)}
    write_json(args.out / "throughput.json", arguments, {"results": results})
    for result in results:
        print(_line(result))


if __name__ == "__main__":
    main()

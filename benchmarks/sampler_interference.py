"""Does polling NVML slow the run it watches, and is a slow repeat the host's doing?

Usage: python benchmarks/sampler_interference.py [--preset full] [--device cuda]
       [--experts eager] [--decode eager] [--tokens 64] [--rounds 5]
       [--samplers fast=20:0,default=20:500] [--json out.json]

Times one A4 page with the timing pass's own `timed_run` without a sampler ("none") and
with each named sampler, NAME=INTERVAL_MS:COUNTER_INTERVAL_MS (a counter interval of 0
never reads the energy counter, which takes milliseconds a read on an H100), after a
warm-up, in orders that give each arm every position and predecessor equally often.
Each timed run gets a sampler of its own, started before it and closed after it, so no
other arm's poller runs beside it. Prints per arm the decode step
time p10/p50/p90 over all steps and the median decode time of a run, and for every run
its energy and the host figures the run record keeps (thread CPU time over wall time,
involuntary context switches, CPU steal).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.device import resolve_placement
from vlmprof.models import build_adapter
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.timed_run import telemetry_sampler, timed_run

from bench_args import (
    add_model_arguments,
    balanced_orders,
    model_spec,
    profile_settings,
    write_json,
)


def main() -> None:
    """Run the arms and print step-time quantiles and host figures (JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser, device="cuda")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samplers", default="fast=20:0,default=20:500")
    args = parser.parse_args()
    spec = model_spec(args)
    adapter = build_adapter(spec)
    placement = resolve_placement(spec.device, spec.dtype)
    settings = profile_settings("interference", max_new_tokens=args.tokens)
    arms: dict[str, ProfileSettings | None] = {"none": None}
    for item in args.samplers.split(","):
        name, _, intervals = item.partition("=")
        interval, counter = (float(v) for v in intervals.split(":"))
        arms[name] = replace(
            settings, telemetry_interval_ms=interval, telemetry_counter_interval_ms=counter
        )

    def timed(name: str) -> dict:
        inputs = inputs_cpu.to(adapter.device, adapter.dtype)
        arm = arms[name]
        if arm is None:
            return timed_run(adapter, [inputs], settings, nvtx)
        with telemetry_sampler(placement, arm) as sampler:
            if not sampler.available:
                raise SystemExit(f"needs NVML: {sampler.reason}")
            return timed_run(adapter, [inputs], settings, nvtx, sampler)

    page = render_page("text_heavy", PAGE_SIZES[0], seed=0, index=0)
    inputs_cpu = adapter.preprocess(page)
    nvtx = NvtxRanges(enabled=True)
    names = list(arms)
    for name in names:  # warm-up, every arm
        timed(name)
    runs = []
    orders = balanced_orders(names)
    for round_index in range(args.rounds):
        for name in orders[round_index % len(orders)]:
            timing = timed(name)
            runs.append(
                {
                    "arm": name,
                    "round": round_index,
                    "prefill_ms": timing["prefill_ms"],
                    "decode_ms": timing["decode_ms"],
                    "steps": timing["decode_step_ms"],
                    "host": timing["host"],
                    "energy_j": (timing["telemetry"] or {}).get("energy_j"),
                }
            )
    print(
        f"{args.preset} preset, experts {args.experts}, decode {args.decode}, "
        f"{args.tokens} tokens, {args.rounds} rounds, samplers {args.samplers}"
    )
    summary = {}
    for name in names:
        mine = [run for run in runs if run["arm"] == name]
        steps = sorted(ms for run in mine for ms in run["steps"])
        deciles = statistics.quantiles(steps, n=10)
        summary[name] = {
            "step_p10_ms": deciles[0],
            "step_p50_ms": statistics.median(steps),
            "step_p90_ms": deciles[-1],
            "decode_median_ms": statistics.median(run["decode_ms"] for run in mine),
        }
        row = summary[name]
        print(
            f"{name:>12}: steps p10 {row['step_p10_ms']:.2f} p50 {row['step_p50_ms']:.2f} "
            f"p90 {row['step_p90_ms']:.2f} ms; decode median {row['decode_median_ms']:.1f} ms"
        )
    for run in runs:
        host, energy = run["host"], run["energy_j"]
        joules = f", {energy['run']:.1f} J" if energy else ""
        print(
            f"{run['arm']:>12} r{run['round']}: decode {run['decode_ms']:8.1f} ms{joules}, busy "
            f"{host['busy_fraction']}, involuntary switches {host['involuntary_switches']}, "
            f"steal {host['steal_ms']} ms"
        )
    write_json(args.json, vars(args), {"summary": summary, "runs": runs})


if __name__ == "__main__":
    main()

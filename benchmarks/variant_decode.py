"""Per-variant prefill and decode time of one page, outside the pipeline, with the gate.

Usage: python benchmarks/variant_decode.py [--preset full] [--device cuda] [--tokens 64]
       [--repeats 3] [--variants baseline,grouped,batched,graphed]
       [--model hf_vlm --architecture qwen2_5_vl --variants baseline,dense-graphed]

Builds each variant in turn (the same seeded weights), each in a process of its own, runs
one untimed warm-up generation and `--repeats` timed generations of an A4 page in gundam
mode. Then, in one more process, the correctness gate judges every variant as the pipeline
does (`variants.gate_runs.GateRuns`: the baseline, the float64 oracle, the float32 checks,
each variant fed the baseline's tokens). Prints prefill ms, decode ms per token and the
gate verdict per variant; `--json` keeps them.
"""

from __future__ import annotations

import argparse
import statistics

from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.timed_run import timed_run
from vlmprof.runtime.untimed_runs import reference_outputs
from vlmprof.variants.gate import GateFactors
from vlmprof.variants.gate_runs import GateRuns
from vlmprof.variants.switches import apply_switches

from bench_args import default_config, in_own_process, profile_settings, write_json

# The graphed decode, then SAM's folded relative positions on it, then the vision stages
# replayed from graphs on that: the arms below build on each other.
GRAPHED = {"experts": "grouped", "decode": "cuda_graph"}
FOLDED = {**GRAPHED, "sam_attention": "folded"}
VISION_GRAPHED = {**FOLDED, "vision": "cuda_graph"}
# Named switch sets this benchmark knows, as a config's variants section would name them.
KNOWN = {
    "baseline": {},
    "grouped": {"experts": "grouped"},
    "batched": {"experts": "batched"},
    "static": {"experts": "grouped", "decode": "static"},
    "graphed": GRAPHED,
    "graphed-batched": {"experts": "batched", "decode": "cuda_graph"},
    "compiled": {**GRAPHED, "compile": "all"},
    "folded": FOLDED,
    "vision-graphed": VISION_GRAPHED,
    "vision-compiled": {**FOLDED, "compile": "vision"},
    "decoder-compiled": {**VISION_GRAPHED, "compile": "decoder"},
    "routed": {**VISION_GRAPHED, "routing": "fused"},
    # For a model without MoE experts (hf_vlm, causal_lm): the decode paths alone.
    "dense-static": {"decode": "static"},
    "dense-graphed": {"decode": "cuda_graph"},
    "dense-graphed-compiled": {"decode": "cuda_graph", "compile": "decoder"},
}
# The stage times kept per variant beside prefill and decode (medians over the repeats).
PARTS = ("vision_ms", "sam_ms", "clip_ms", "projector_ms")


def measure(spec: dict, page, tokens: int, repeats: int) -> dict:
    """Timed runs of one variant, after one untimed warm-up generation (run it in a process
    of its own, `in_own_process`)."""
    adapter = build_adapter(ModelSpec(**spec))
    settings = profile_settings("variants", max_new_tokens=tokens, telemetry=False)
    inputs_cpu = adapter.preprocess(page)
    reference_outputs(adapter, inputs_cpu, settings)  # the warm-up, as the timing pass's
    runs = [
        timed_run(
            adapter,
            [inputs_cpu.to(adapter.device, adapter.dtype)],
            settings,
            NvtxRanges(enabled=True),
        )
        for _ in range(repeats)
    ]
    prefill = statistics.median(run["prefill_ms"] for run in runs)
    decode = statistics.median(run["decode_ms"] / (run["tokens"][0] - 1) for run in runs)
    parts = {
        part: statistics.median(run[part] for run in runs)
        for part in PARTS
        if all(run.get(part) is not None for run in runs)
    }
    result = {
        "prefill_ms": prefill,
        **parts,
        "llm_prefill_ms": prefill - parts["vision_ms"] if "vision_ms" in parts else None,
        "decode_ms_per_token": decode,
        "prefill_len": inputs_cpu.prefill_len,
        "runs": [
            {k: run.get(k) for k in ("prefill_ms", "decode_ms", "tokens", *PARTS)} for run in runs
        ],
    }
    return result


def gate_verdicts(spec: dict, variants: dict[str, dict], page, tokens: int) -> dict[str, dict]:
    """The gate's verdict on each variant's switches against the baseline `spec` on `page`,
    at the config's default factors (run it in a process of its own)."""
    gate = default_config()["variant_gate"]
    runs = GateRuns(
        ModelSpec(**spec),
        {"page": page},
        profile_settings("variants", max_new_tokens=tokens, telemetry=False),
        GateFactors(gate["code_path_factor"], gate["precision_factor"]),
    )
    return {name: runs.judge(name, switches) for name, switches in variants.items()}


def main() -> None:
    """Measure the named variants and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="deepseek_ocr")
    parser.add_argument("--architecture", default="qwen2_5_vl", help="of --model hf_vlm")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="baseline,grouped,batched")
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args()
    base = {
        "name": args.model,
        "architecture": args.architecture,
        "preset": args.preset,
        "device": args.device,
        "dtype": args.dtype,
        "mode": "gundam",
        "decode": "eager",
        "compile": "none",
    }
    page = render_page("text_heavy", PAGE_SIZES[0], seed=0, index=0)
    results: dict[str, dict] = {}
    names = args.variants.split(",")
    released = base | {"experts_implementation": "eager"}
    for name in names:
        spec = apply_switches(released, KNOWN[name])
        try:
            results[name] = in_own_process(measure, spec, page, args.tokens, args.repeats)
        except (RuntimeError, ValueError) as error:
            results[name] = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
    timed = {name: KNOWN[name] for name in names[1:] if "error" not in results[name]}
    verdicts = in_own_process(gate_verdicts, released, timed, page, args.tokens)
    for name in names:
        result = results[name]
        if "error" in result:
            print(f"{name:>16}: failed: {result['error']}")
            continue
        verdict = verdicts.get(name)
        result["gate"] = (
            "reference" if verdict is None else f"{verdict['status']}: {verdict['detail']}"
        )
        vision = result.get("vision_ms")
        llm = result["llm_prefill_ms"]
        split = "" if vision is None else f" = vision {vision:.1f} + LLM {llm:.1f}"
        print(
            f"{name:>16}: prefill {result['prefill_ms']:8.1f} ms{split} "
            f"(prefill_len {result['prefill_len']}), decode "
            f"{result['decode_ms_per_token']:7.2f} ms/token; gate {result['gate']}"
        )
    write_json(args.json, vars(args), {"results": results})


if __name__ == "__main__":
    main()

"""Which size of real error the variants' correctness gate catches, in float32 and bfloat16:
a perturbed output head, and one decode layer's attention output off by a fraction.

Usage: python benchmarks/gate_resolution.py [--pages 4] [--tokens 32] [--mode gundam]
       [--dtypes float32,bfloat16] [--sizes 0,1e-06,1e-05,0.0001,0.001,0.01]
       [--json out.json] [--markdown out.md]

Two perturbations of the small-preset model, each at every size:
- head: the model spec's `perturb` (a test switch) adds seeded Gaussian noise to the output
  head's weights, of `size` times their standard deviation;
- decode attention: the last decoder layer's attention output is multiplied by 1 + `size`
  at every decode step (`models.implementation.scale_decode_attention`), the prefill left
  alone, so only the decode can show it.
For each, the gate's own runs (`variants.gate_runs.GateRuns`: the baseline, the float64
oracle, the float32 checks, the perturbed model fed the baseline's tokens) and its verdict
at the config's default factors. Per dtype, kind and size: pages caught out of pages, the
largest error ratio at the check precision (float32) and, for bfloat16, the RMS error ratio
at the run's precision, each min to max over the pages. Size 0 is the control: the same
model built again must pass on every page.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from PIL import Image

from vlmprof.atomic import write_text_atomic
from vlmprof.data.synthetic_pages import CATEGORIES, PAGE_SIZES, render_page
from vlmprof.models import ModelSpec
from vlmprof.models.base import ModelAdapter
from vlmprof.models.implementation import scale_decode_attention
from vlmprof.provenance import source_state
from vlmprof.variants.gate import GateFactors
from vlmprof.variants.gate_runs import Alteration, GateRuns

from bench_args import default_config, profile_settings, write_json

SIZES: tuple[float, ...] = (0.0, 0.000001, 0.00001, 0.0001, 0.001, 0.01)
KINDS: tuple[str, ...] = ("head", "decode attention")
# What the gate measured on each page, kept per row.
PAGE_KEYS: tuple[str, ...] = ("code_path_ratio", "precision_ratio", "first_different_pick")


def synthetic_pages(n: int) -> dict[str, Image.Image]:
    """`n` generated pages, categories and sizes cycling, by a name saying which."""
    pages = {}
    for index in range(n):
        category, size = CATEGORIES[index % len(CATEGORIES)], PAGE_SIZES[index % len(PAGE_SIZES)]
        pages[f"{index}-{category}-{size.name}"] = render_page(category, size, 0, index)
    return pages


def _attention_off_by(size: float) -> Alteration:
    """The last decoder layer's attention output (1 + `size`) times too large at decode."""

    def alter(adapter: ModelAdapter) -> None:
        last = adapter.decoder_layer_paths()[-1]
        scale_decode_attention(adapter.module, f"{last}.self_attn", 1.0 + size)

    return alter


def perturbed_verdict(runs: GateRuns, kind: str, size: float) -> dict[str, Any]:
    """The gate's verdict on the baseline perturbed by `kind` at `size` (0: built again)."""
    name = f"{kind} {size:g}"
    if kind == "head":
        return runs.judge(name, {"perturb": size})
    return runs.judge(name, {}, _attention_off_by(size) if size else None)


def gate_resolution(
    dtypes: Sequence[str],
    kinds: Sequence[str],
    sizes: Sequence[float],
    pages: dict[str, Image.Image],
    tokens: int,
    spec: ModelSpec,
    factors: GateFactors,
) -> list[dict[str, Any]]:
    """One row per dtype x kind x size: pages caught, and per page what the gate measured."""
    settings = profile_settings("gate-resolution", max_new_tokens=tokens)
    rows = []
    for dtype in dtypes:
        runs = GateRuns(dataclasses.replace(spec, dtype=dtype), pages, settings, factors)
        for kind in kinds:
            for size in sizes:
                verdict = perturbed_verdict(runs, kind, size)
                results = verdict["page_results"]
                per_page = {
                    key: {image: page.get(key) for image, page in results.items()}
                    for key in PAGE_KEYS
                }
                rows.append(
                    {
                        "dtype": dtype,
                        "kind": kind,
                        "size": size,
                        "pages": len(results),
                        "caught": sum(not page["ok"] for page in results.values()),
                        "status": verdict["status"],
                        **per_page,
                    }
                )
    return rows


def resolution_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """Per dtype and kind, the smallest size caught on every page and the largest that
    passes on every page."""
    parts = []
    for dtype, kind in dict.fromkeys((r["dtype"], r["kind"]) for r in rows):
        mine = [r for r in rows if (r["dtype"], r["kind"]) == (dtype, kind) and r["size"] > 0]
        caught = [r["size"] for r in mine if r["caught"] == r["pages"]]
        passed = [r["size"] for r in mine if r["caught"] == 0]
        found = []
        if caught:
            found.append(f"caught on every page from {min(caught):.4%}")
        if passed:
            found.append(f"{max(passed):.4%} passes on every page")
        parts.append(f"{kind} in {dtype}: " + ("; ".join(found) or "no size decided"))
    return ". ".join(parts)


def _range(values: dict[str, Any]) -> str:
    present = [v for v in values.values() if v is not None]
    return f"{min(present):.3g} to {max(present):.3g}" if present else "-"


def markdown_table(rows: Sequence[dict[str, Any]], factors: GateFactors, setting: str) -> str:
    """The rows as Markdown under a line saying how they were measured (`setting`)."""
    lines = [
        "# Gate resolution: a perturbed head and a perturbed decode layer against the model "
        "as built",
        "",
        f"{setting}.",
        "",
        "| dtype | perturbation | size | pages caught / pages | largest error / baseline's "
        "(float32), min to max over pages | RMS error / baseline's at the run's precision | "
        "first step whose greedy pick differs (per page; - none) |",
        "|:---|:---|---:|---:|---:|---:|:---|",
    ]
    for row in rows:
        picks = ", ".join(
            "-" if s is None else str(s) for s in row["first_different_pick"].values()
        )
        lines.append(
            f"| {row['dtype']} | {row['kind']} | {row['size']:.4%} | {row['caught']} / "
            f"{row['pages']} | {_range(row['code_path_ratio'])} | "
            f"{_range(row['precision_ratio'])} | {picks} |"
        )
    limits = (
        f"Limits (the config's defaults): {factors.code_path:g}x at float32, "
        f"{factors.precision:g}x at the run's precision"
    )
    return "\n".join([*lines, "", f"{limits}. {resolution_sentence(rows)}.", ""])


def main(argv: list[str] | None = None) -> int:
    """Measure every dtype, kind and size, print the table, write --json and --markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--mode", default="gundam")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--sizes", default=",".join(f"{s:g}" for s in SIZES))
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args(argv)
    gate = default_config()["variant_gate"]
    factors = GateFactors(gate["code_path_factor"], gate["precision_factor"])
    spec = ModelSpec(preset="small", device="cpu", mode=args.mode)
    dtypes = args.dtypes.split(",")
    sizes = [float(size) for size in args.sizes.split(",")]
    pages = synthetic_pages(args.pages)
    rows = gate_resolution(dtypes, KINDS, sizes, pages, args.tokens, spec, factors)
    git = source_state()
    command = ["benchmarks/gate_resolution.py", *(sys.argv[1:] if argv is None else argv)]
    setting = (
        f"Small preset on CPU, mode {args.mode}, {args.tokens} tokens on each of {args.pages} "
        f"generated pages, fed the baseline's tokens; `python {' '.join(command)}` at commit "
        f"{git['git_commit']}{' (uncommitted changes)' if git['git_dirty'] else ''}"
    )
    table = markdown_table(rows, factors, setting)
    print(table, end="")
    if args.markdown:
        write_text_atomic(args.markdown, table)
    if args.json:
        payload = {
            "spec": dataclasses.asdict(spec),
            "tokens": args.tokens,
            "factors": dataclasses.asdict(factors),
            "resolution": resolution_sentence(rows),
            "rows": rows,
        }
        write_json(args.json, vars(args), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())

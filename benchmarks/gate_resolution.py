"""Which size of real error the variants' correctness gate catches: a perturbed output head.

Usage: python benchmarks/gate_resolution.py [--pages 6] [--tokens 32] [--mode gundam]
       [--sizes 0,0.001,0.003,0.01,0.02,0.03] [--tolerance 0.02]
       [--json out.json] [--markdown out.md]

The model spec's `perturb` (a test switch) adds seeded Gaussian noise to the output head
(`lm_head`, the last projection to the vocabulary) and nothing else: every weight gets noise
of standard deviation `perturb` times the standard deviation of the head's weights, so 0.01
is noise at 1% of the head's weight spread. For each size the perturbed small-preset model
generates greedily on generated pages, and the gate (`judge_variant`, the pipeline's own)
judges its outputs against the unperturbed model's at `--tolerance`. Per size: pages caught
out of pages, the first-step logit difference as a fraction of the largest first-step logit,
and where the greedy tokens first diverge. Size 0 is the control: the same model built again
must pass on every page.
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
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.provenance import source_state
from vlmprof.runtime.profile_shard import reference_outputs
from vlmprof.variants.gate import Outputs, judge_variant

from bench_args import profile_settings, write_json

SIZES: tuple[float, ...] = (0.0, 0.001, 0.003, 0.01, 0.02, 0.03)
# What the gate measured on each page, kept per size.
PAGE_KEYS: tuple[str, ...] = ("relative_logit_diff", "diverged_at", "tie_gap")


def synthetic_pages(n: int) -> dict[str, Image.Image]:
    """`n` generated pages, categories and sizes cycling, by a name saying which."""
    pages = {}
    for index in range(n):
        category, size = CATEGORIES[index % len(CATEGORIES)], PAGE_SIZES[index % len(PAGE_SIZES)]
        pages[f"{index}-{category}-{size.name}"] = render_page(category, size, 0, index)
    return pages


def model_outputs(spec: ModelSpec, pages: dict[str, Image.Image], tokens: int) -> Outputs:
    """The gate's reference outputs of the model `spec` builds, on every page."""
    adapter = build_adapter(spec)
    settings = profile_settings("gate-resolution", max_new_tokens=tokens)
    return {
        name: reference_outputs(adapter, adapter.preprocess(page), settings)
        for name, page in pages.items()
    }


def gate_resolution(
    sizes: Sequence[float],
    pages: dict[str, Image.Image],
    tokens: int,
    tolerance: float,
    spec: ModelSpec,
) -> list[dict[str, Any]]:
    """One row per perturb size: pages caught, and per page the first-step relative logit
    difference and the step where the tokens first diverge (None: identical)."""
    baseline = model_outputs(spec, pages, tokens)
    rows = []
    for size in sizes:
        perturbed = model_outputs(dataclasses.replace(spec, perturb=size), pages, tokens)
        verdict = judge_variant(f"perturb {size:g}", baseline, perturbed, tolerance)
        results = verdict["page_results"]
        per_page = {key: {n: page[key] for n, page in results.items()} for key in PAGE_KEYS}
        rows.append(
            {
                "perturb": size,
                "pages": len(results),
                "caught": sum(not page["ok"] for page in results.values()),
                "status": verdict["status"],
                **per_page,
            }
        )
    return rows


def resolution_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """The smallest size caught on every page and the largest that passes on every page."""
    caught = [r["perturb"] for r in rows if r["perturb"] > 0 and r["caught"] == r["pages"]]
    passed = [r["perturb"] for r in rows if r["perturb"] > 0 and r["caught"] == 0]
    parts = []
    if caught:
        parts.append(f"the gate catches a perturbation of {min(caught):.1%} on every page")
    if passed:
        parts.append(f"{max(passed):.1%} passes on every page")
    return "; ".join(parts) or "no size was caught on every page or passed on every page"


def markdown_table(rows: Sequence[dict[str, Any]], tolerance: float, setting: str) -> str:
    """The rows as Markdown under a line saying how they were measured (`setting`): size,
    caught / pages, logit difference range, divergences; then the resolution."""

    def steps(row: dict[str, Any]) -> str:
        return ", ".join("-" if s is None else str(s) for s in row["diverged_at"].values())

    lines = [
        "# Gate resolution: a perturbed output head against the model as built",
        "",
        f"{setting}.",
        "",
        "| perturb (noise std / head weight std) | pages caught / pages | first-step max logit "
        "difference (fraction of the largest logit), min to max over pages | first differing "
        "token (0-based, per page; - identical) |",
        "|---:|---:|---:|:---|",
    ]
    for row in rows:
        diffs = row["relative_logit_diff"].values()
        lines.append(
            f"| {row['perturb']:.1%} | {row['caught']} / {row['pages']} | "
            f"{min(diffs):.3g} to {max(diffs):.3g} | {steps(row)} |"
        )
    return "\n".join(
        [*lines, "", f"Gate tolerance {tolerance:g}: {resolution_sentence(rows)}.", ""]
    )


def main(argv: list[str] | None = None) -> int:
    """Measure the sizes, print the table, write --json and --markdown if given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--mode", default="gundam")
    parser.add_argument("--sizes", default=",".join(f"{s:g}" for s in SIZES))
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args(argv)
    spec = ModelSpec(preset="small", device="cpu", dtype="float32", mode=args.mode)
    sizes = [float(size) for size in args.sizes.split(",")]
    rows = gate_resolution(sizes, synthetic_pages(args.pages), args.tokens, args.tolerance, spec)
    git = source_state()
    command = ["benchmarks/gate_resolution.py", *(sys.argv[1:] if argv is None else argv)]
    setting = (
        f"Small preset on CPU in float32, mode {args.mode}, {args.tokens} greedy tokens on each"
        f" of {args.pages} generated pages; `python {' '.join(command)}` at commit"
        f" {git['git_commit']}{' (uncommitted changes)' if git['git_dirty'] else ''}"
    )
    table = markdown_table(rows, args.tolerance, setting)
    print(table, end="")
    if args.markdown:
        write_text_atomic(args.markdown, table)
    if args.json:
        payload = {
            "spec": dataclasses.asdict(spec),
            "tokens": args.tokens,
            "tolerance": args.tolerance,
            "resolution": resolution_sentence(rows),
            "rows": rows,
        }
        write_json(args.json, vars(args), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())

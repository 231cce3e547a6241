"""The operator pass's timeline set against the timing pass: dilation and busy fraction.

torch.profiler slows the pass it records (every operator and launch call is instrumented),
so a stage's wall time in `ops/timeline.json` is longer than the same stage in the timing
pass, and its busy fraction (kernel time over that wall time) reads too low. Kernel
durations themselves are measured on the device and barely change under the profiler, so the
busy fraction a reader should see is the profiler pass's kernel time over the timing pass's
stage time.

Per stage, over the pages both passes measured (the timeline keeps each page's figures), and
per run of the stage (a page; for decode, a decode step, since the operator pass generates
`operators.max_new_tokens` tokens and the timing pass `max_new_tokens`; their mean steps
then attend over different context lengths, which at batch size 1 changes a step little):

- profiled_ms_per_run: the profiler pass's stage time, summed over those pages / their runs
- timed_ms_per_run: the timing pass's mean over the same pages (each page's mean over its ok
  repeats; for decode, its mean decode step)
- kernel_ms_per_run, kernels_per_run: time covered by kernels (on CPU, top-level operators)
  and their count, from the profiler pass
- dilation = profiled_ms_per_run / timed_ms_per_run (the ratio of the two means)
- busy_fraction_timed = kernel_ms_per_run / timed_ms_per_run, capped at 1; busy_fraction_capped
  says when it was: the profiler pass's kernels then cover more time than the timed stage
  lasts (on CPU the "kernels" are operators, which the profiler slows too), read it as fully
  busy
- verdict_timed: the timeline's launch-bound rule applied to busy_fraction_timed
- launch_overhead_us_timed = launch_overhead_us / dilation on CUDA: an estimate that assumes
  a launch call is slowed as much as its stage
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vlmprof.profiler.timeline import verdict

# The per-step stage a stage is compared by, where the two passes run different step counts.
PER_STEP: dict[str, str] = {"decode": "decode_per_token"}
UNITS: dict[str, str] = {"decode": "decode step"}
NO_PAGES = (
    "timeline without per-page figures (written before they were recorded): rerun the "
    "operator pass to set it against the timing pass"
)


def _timed_column(stage: str) -> str:
    """The per_image.csv column holding the timing pass's time of one run of `stage`."""
    return f"{PER_STEP.get(stage, stage)} (ms)"


def timed_figures(entry: Mapping[str, Any], stage: str, per_image: pd.DataFrame) -> dict[str, Any]:
    """The figures of one timeline stage against the timing pass (this module's docstring);
    `timed_note` instead of them where they cannot be computed."""
    column = _timed_column(stage)
    if "pages" not in entry or not entry.get("runs_per_page"):
        return {"timed_note": NO_PAGES}
    timed = pd.to_numeric(per_image[column], errors="coerce") if column in per_image else None
    pages = [
        page
        for page in entry["pages"]
        if timed is not None
        and page["image_id"] in timed.index
        and np.isfinite(timed[page["image_id"]])
        and timed[page["image_id"]] > 0
    ]
    if not pages:
        return {"timed_note": "no page of the operator pass was timed by the timing pass"}
    runs = entry["runs_per_page"] * len(pages)
    profiled = sum(page["wall_ms"] for page in pages) / runs
    timed_ms = float(timed[[page["image_id"] for page in pages]].mean())
    kernel_ms = sum(page["busy_ms"] for page in pages) / runs
    dilation = profiled / timed_ms
    overhead = entry.get("launch_overhead_us")
    return {
        "run_unit": UNITS.get(stage, "page"),
        "timed_pages": len(pages),
        "profiled_ms_per_run": profiled,
        "timed_ms_per_run": timed_ms,
        "kernel_ms_per_run": kernel_ms,
        "kernels_per_run": sum(page["kernels"] for page in pages) / runs,
        "dilation": dilation,
        "busy_fraction_timed": min(kernel_ms / timed_ms, 1.0),
        "busy_fraction_capped": kernel_ms > timed_ms,
        "verdict_timed": verdict(min(kernel_ms / timed_ms, 1.0), entry.get("mean_kernel_us")),
        "launch_overhead_us_timed": None if overhead is None else overhead / dilation,
    }


def against_timing_pass(timeline: dict[str, Any], per_image: pd.DataFrame) -> dict[str, Any]:
    """`timeline` (ops/timeline.json) with every stage's figures against the timing pass's
    per-page means (tables/per_image.csv) added beside its own; other entries unchanged."""
    return {
        stage: entry | timed_figures(entry, stage, per_image)
        if isinstance(entry, dict) and "wall_ms" in entry
        else entry
        for stage, entry in timeline.items()
    }

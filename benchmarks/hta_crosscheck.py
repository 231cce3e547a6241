"""Per-stage kernel and idle time of operator-pass traces: ours against HolisticTraceAnalysis.

Usage: python benchmarks/hta_crosscheck.py TRACE.json.gz [TRACE ...] [--json OUT]
(the traces of a run are results/<run>/ops/traces/*.json.gz).

Ours is `vlmprof.profiler.timeline`: a kernel belongs to the stage whose CPU range launched
it (matched by correlation id), idle time is the gaps over 10 us inside the stage's device
window. HTA's side is its own attribution: `TraceAnalysis.get_gpu_kernels_with_user_annotations`
(HTA 0.5) gives each GPU kernel the innermost `gpu_user_annotation` (torch's device-side copy
of a `record_function` label) it overlaps; the trace HTA reads keeps only the stages' labels
among them (the operator pass also labels each MoE block, which would otherwise claim its
kernels). HTA has no idle time per annotation, so idle on its side is its kernels windowed
by the same stage spans from its trace frame, shown twice: gaps over 10 us (like ours) and
every gap. A last row compares all device activity of the trace with HTA's temporal
breakdown (its idle there spans first to last kernel, between stages too).

HTA rounds float timestamps to whole microseconds by default (start up, end down), which
cuts about 1 us off every kernel; this script turns that off (HTA_DISABLE_NS_ROUNDING=1).
A CPU-only trace has no kernels to compare: the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmprof.profiler.operators import STAGE_LABELS, STAGES
from vlmprof.profiler.timeline import (
    GAP_THRESHOLD_US,
    device_time_us,
    exclusive_segments,
    exclusive_stage,
    load_trace,
    trace_basis,
    trace_stage_totals,
)

from bench_args import write_json

TOLERANCE = 0.05  # the agreement the cross-check asks of kernel time per stage
Interval = tuple[int, int]  # integer nanoseconds


@dataclass
class StageSide:
    """One stage's kernel count, kernel time and idle time as one side computes them (ms)."""

    kernels: int = 0
    kernel_ms: float = 0.0
    idle_ms: float = 0.0
    idle_all_ms: float | None = None

    def add(self, other: StageSide) -> None:
        """Accumulate another trace's figures for the same stage."""
        self.kernels += other.kernels
        self.kernel_ms += other.kernel_ms
        self.idle_ms += other.idle_ms
        if other.idle_all_ms is not None:
            self.idle_all_ms = (self.idle_all_ms or 0.0) + other.idle_all_ms


def _ns(us: float) -> int:
    return int(round(float(us) * 1000.0))


def windowed_stage_times(
    kernels: Iterable[Interval],
    windows: Sequence[tuple[str, Interval]],
    gap_threshold_us: float = GAP_THRESHOLD_US,
) -> dict[str, StageSide]:
    """Per exclusive stage: the kernels starting inside it, their summed time, and the idle
    time inside the stage (gaps over `gap_threshold_us`, and every gap).

    `windows` are (stage label, (start, end)) device spans; a stage's time is where it is
    the innermost span (`exclusive_segments`). Times are integer nanoseconds.
    """
    ordered = sorted(kernels)
    threshold = _ns(gap_threshold_us)
    result: dict[str, StageSide] = {}
    for stage, segments in exclusive_segments(list(windows)).items():
        side = StageSide(idle_all_ms=0.0)
        for seg_start, seg_end in segments:
            inside = [(s, e) for s, e in ordered if s < seg_end and e > seg_start]
            starting = [(s, e) for s, e in inside if seg_start <= s < seg_end]
            side.kernels += len(starting)
            side.kernel_ms += sum(e - s for s, e in starting) / 1e6
            covered_to, gaps = seg_start, []
            for start, end in inside:
                if start > covered_to:
                    gaps.append(start - covered_to)
                covered_to = max(covered_to, end)
            gaps.append(max(seg_end - covered_to, 0))
            side.idle_ms += sum(g for g in gaps if g > threshold) / 1e6
            side.idle_all_ms = (side.idle_all_ms or 0.0) + sum(gaps) / 1e6
        result[stage] = side
    return result


def our_stage_times(trace: Mapping[str, Any]) -> dict[str, StageSide]:
    """The same figures from `vlmprof.profiler.timeline`."""
    return {
        stage: StageSide(t.kernels, t.kernel_us / 1000.0, t.idle_gap_us / 1000.0)
        for stage, t in trace_stage_totals(trace).items()
    }


def _import_hta() -> Any:
    """HTA's TraceAnalysis, with its timestamp rounding off and its logging quiet."""
    os.environ.setdefault("HTA_DISABLE_NS_ROUNDING", "1")
    try:
        from hta.trace_analysis import TraceAnalysis
    except ImportError as error:
        raise SystemExit(
            f"HolisticTraceAnalysis is not importable ({error}); install it with "
            "`pip install holistictraceanalysis==0.5.0` (on the GPU machine: its wheel from "
            "benchmarks/device_kit.sh)"
        ) from None
    logging.getLogger("hta").setLevel(logging.ERROR)
    return TraceAnalysis


def _attributed(analysis: Any) -> dict[str, StageSide]:
    """Kernel count and time per stage as HTA attributes kernels to the innermost stage
    annotation (`get_gpu_kernels_with_user_annotations`); kernels under none are left out."""
    kernels = analysis.get_gpu_kernels_with_user_annotations(
        rank=0, expand_names=True, shortern_names=False
    )
    sides: dict[str, StageSide] = {}
    if kernels is None:
        return sides
    kernels = kernels[(kernels["s_cat"] == "kernel") & kernels["s_user_annotation"].ne("")]
    for label, group in kernels.groupby("s_user_annotation"):
        side = sides.setdefault(exclusive_stage(str(label)), StageSide(idle_all_ms=0.0))
        side.kernels += len(group)
        side.kernel_ms += float(group["dur"].sum()) / 1000.0
    return sides


def hta_side(path: Path) -> tuple[dict[str, StageSide], dict[str, float]]:
    """HTA's per-stage figures for one trace (kernels and kernel time as HTA attributes them,
    idle from its kernels inside the stages' device spans), and its whole-trace temporal
    breakdown (ms)."""
    analysis = _import_hta()(trace_files={0: str(path)}, trace_dir=str(path.parent))
    frame = analysis.t.get_trace(0)
    symbols = analysis.t.symbol_table.get_sym_table()
    cat = frame["cat"].map(lambda i: symbols[i])
    name = frame["name"].map(lambda i: symbols[i])
    kernel_rows = frame[cat == "kernel"]
    kernels = [
        (_ns(ts), _ns(ts) + _ns(dur))
        for ts, dur in zip(kernel_rows["ts"], kernel_rows["dur"], strict=True)
    ]
    annotation = cat == "gpu_user_annotation"
    annotated = annotation & name.isin(STAGE_LABELS)
    windows = [
        (label, (_ns(ts), _ns(ts) + _ns(dur)))
        for label, ts, dur in zip(
            name[annotated], frame.loc[annotated, "ts"], frame.loc[annotated, "dur"], strict=True
        )
    ]
    if kernels and not windows:
        raise SystemExit(
            f"{path}: kernels but no gpu_user_annotation stage spans; profile with a torch "
            "that records them (torch.profiler with CUDA activity does)"
        )
    # HTA attributes kernels to the stage annotations only.
    analysis.t.traces[0] = frame[~annotation | annotated]
    sides = _attributed(analysis)
    for stage, windowed in windowed_stage_times(kernels, windows).items():
        side = sides.setdefault(stage, StageSide(idle_all_ms=0.0))
        side.idle_ms, side.idle_all_ms = windowed.idle_ms, windowed.idle_all_ms
    # Annotations sit on a GPU stream in HTA's frame; out of the temporal breakdown with them,
    # or they would count as device activity.
    analysis.t.traces[0] = frame[~annotation]
    temporal = analysis.get_temporal_breakdown(visualize=False).iloc[0]
    whole = {
        "device_ms": (temporal["compute_time(us)"] + temporal["non_compute_time(us)"]) / 1000.0,
        "idle_ms": temporal["idle_time(us)"] / 1000.0,
    }
    return sides, whole


def _difference(ours: float, theirs: float) -> float | None:
    return (theirs - ours) / ours if ours else None


def comparison_rows(
    ours: Mapping[str, StageSide], hta: Mapping[str, StageSide]
) -> list[dict[str, Any]]:
    """One row per stage present on either side, in pipeline order."""
    rows = []
    for stage in [s for s in STAGES if s in ours or s in hta]:
        mine, theirs = ours.get(stage, StageSide()), hta.get(stage, StageSide())
        difference = _difference(mine.kernel_ms, theirs.kernel_ms)
        rows.append(
            {
                "stage": stage,
                "our kernels": mine.kernels,
                "HTA kernels": theirs.kernels,
                "our kernel ms": mine.kernel_ms,
                "HTA kernel ms": theirs.kernel_ms,
                "difference": difference,
                "within 5%": difference is not None and abs(difference) <= TOLERANCE,
                "our idle ms": mine.idle_ms,
                "HTA idle ms": theirs.idle_ms,
                "HTA idle ms, every gap": theirs.idle_all_ms,
            }
        )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a Markdown table; the difference as a percentage."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            f"{row[c] * 100:+.2f}%" if c == "difference" and row[c] is not None else _cell(row[c])
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Compare the traces given; 0 also when none holds GPU kernels (nothing to compare)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="+", type=Path, help="operator-pass traces (.json.gz)")
    parser.add_argument("--json", help="also write the comparison here")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.traces if not p.is_file()]
    if missing:
        parser.error(f"no such trace: {', '.join(missing)}")
    loaded = {path: load_trace(path) for path in args.traces}
    cuda = [path for path, trace in loaded.items() if trace_basis(trace) == "cuda kernels"]
    for path in sorted(set(args.traces) - set(cuda)):
        print(f"{path}: no GPU kernels (a CPU-only trace); nothing for HTA to compare")
    if not cuda:
        print("no trace with GPU kernels: the cross-check needs a CUDA run's operator pass")
        named = vars(args) | {"traces": [str(p) for p in args.traces]}
        write_json(args.json, named, {"status": "no GPU kernels"})
        return 0
    ours_total: dict[str, StageSide] = {}
    hta_total: dict[str, StageSide] = {}
    per_trace, whole = {}, {"our device ms": 0.0, "HTA device ms": 0.0, "HTA idle ms": 0.0}
    for path in cuda:
        ours = our_stage_times(loaded[path])
        hta, temporal = hta_side(path)
        per_trace[str(path)] = comparison_rows(ours, hta)
        for total, sides in ((ours_total, ours), (hta_total, hta)):
            for stage, side in sides.items():
                total.setdefault(stage, StageSide()).add(side)
        whole["our device ms"] += device_time_us(loaded[path]) / 1000.0
        whole["HTA device ms"] += temporal["device_ms"]
        whole["HTA idle ms"] += temporal["idle_ms"]
    rows = comparison_rows(ours_total, hta_total)
    print(f"{len(cuda)} trace(s) with GPU kernels; stage kernel and idle time, ours and HTA's")
    print(markdown_table(rows))
    print(
        f"all device activity of the traces: ours {whole['our device ms']:.3f} ms, HTA "
        f"{whole['HTA device ms']:.3f} ms; HTA idle, first to last kernel: "
        f"{whole['HTA idle ms']:.3f} ms"
    )
    outside = [row["stage"] for row in rows if not row["within 5%"]]
    print(
        "kernel time within 5% in every stage"
        if not outside
        else f"kernel time differs by more than 5% in: {', '.join(outside)}; explain before quoting"
    )
    payload = {"status": "compared", "stages": rows, "per_trace": per_trace, "whole_trace": whole}
    write_json(args.json, vars(args) | {"traces": [str(p) for p in args.traces]}, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())

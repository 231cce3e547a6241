"""Per-stage timeline numbers from a torch.profiler Chrome trace: busy, launches, idle gaps.

The trace is parsed directly. HolisticTraceAnalysis 0.5.0 was the first choice, but it
analyses GPU kernels only (its temporal and idle-time breakdowns fail on a CPU-only trace),
has no breakdown by `record_function` label, and needs jupyterlab, plotly and an
undeclared psutil; the numbers below take one pass over the trace's events.

Basis: "cuda kernels" when the trace holds kernels, else "cpu ops". A stage's time is where
it is the innermost open stage label (so `llm_prefill` is prefill outside sam, clip and
projector). On CUDA a kernel belongs to the stage whose CPU range encloses the runtime call
that launched it (matched by correlation id, on the same thread), and a stage's device
window runs from its first kernel's start to its last kernel's end. On CPU the windows are
the label ranges and the "kernels" are top-level operators (ATen calls made from Python):
gaps between leaf operators would count a parent operator's own compute as idle.
Busy time is the union of kernel (op) intervals inside a stage's time; idle gaps are the
uncovered stretches longer than 10 us, those at a stage's edges included.

Verdict rule: "launch-bound" when the busy fraction is below 0.5 and the mean kernel (op)
lasts under 20 us, i.e. the device mostly waits for short work to be issued; otherwise
"compute/memory-bound". On CPU "launch-bound" reads as dispatch- and Python-bound.
"""

from __future__ import annotations

import bisect
import gzip
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vlmprof.profiler.operators import STAGE_LABELS, STAGES
from vlmprof.stages import exclusive_parts

GAP_THRESHOLD_US = 10.0
LAUNCH_BOUND_BUSY = 0.5
LAUNCH_BOUND_MEAN_US = 20.0
# Inclusive stages reported beside the exclusive ones: their parts' totals added.
COMBINED_STAGES: dict[str, tuple[str, ...]] = {"prefill": exclusive_parts("prefill")}
_DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
# Runtime calls that replay a captured CUDA graph: one call launches all its kernels.
_GRAPH_LAUNCHES = ("cudaGraphLaunch", "cuGraphLaunch", "hipGraphLaunch")
# A stage's figures kept per page (with_pages).
PAGE_KEYS: tuple[str, ...] = ("wall_ms", "busy_ms", "kernels", "launches")
_LAUNCH_PREFIXES = ("cudaLaunch", "cuLaunch", "hipLaunch", "hipModuleLaunch", *_GRAPH_LAUNCHES)

Interval = tuple[int, int]  # start and end in integer nanoseconds


@dataclass
class StageTotals:
    """Sums over one stage (any number of traces) from which the metrics are derived."""

    wall_us: float = 0.0
    busy_us: float = 0.0
    launches: int = 0
    kernels: int = 0
    kernel_us: float = 0.0
    launch_call_us: float = 0.0
    idle_gap_us: float = 0.0
    idle_gaps: int = 0

    def add(self, other: StageTotals) -> None:
        """Accumulate `other` into this total."""
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass(frozen=True)
class _Span:
    name: str
    tid: Any
    start: int
    end: int


def load_trace(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A Chrome trace from `.json` or `.json.gz`."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _ns(value: float) -> int:
    return int(round(float(value) * 1000.0))


def _span(event: Mapping[str, Any]) -> _Span:
    start = _ns(event["ts"])
    return _Span(event["name"], event.get("tid"), start, start + _ns(event.get("dur", 0)))


def exclusive_stage(label: str) -> str:
    """The exclusive stage a label's own time belongs to (prefill's is LLM prefill)."""
    return "llm_prefill" if label == "prefill" else label


def _innermost(spans: list[_Span], tid: Any, at: int) -> _Span | None:
    """The latest-starting label range on thread `tid` that contains time `at`."""
    containing = [s for s in spans if s.tid == tid and s.start <= at <= s.end]
    return max(containing, key=lambda s: (s.start, -s.end), default=None)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def exclusive_segments(windows: list[tuple[str, Interval]]) -> dict[str, list[Interval]]:
    """Split nested label windows into the times where each label is the innermost one.

    Windows are (label, (start, end)); the innermost at an instant is the latest-starting
    window covering it. Returned segments are keyed by exclusive stage name.
    """
    bounds = sorted({t for _, (s, e) in windows for t in (s, e)})
    segments: dict[str, list[Interval]] = {}
    for left, right in zip(bounds, bounds[1:], strict=False):
        covering = [(s, -e, label) for label, (s, e) in windows if s <= left and right <= e]
        if not covering:
            continue
        label = exclusive_stage(max(covering)[2])
        parts = segments.setdefault(label, [])
        if parts and parts[-1][1] == left:
            parts[-1] = (parts[-1][0], right)
        else:
            parts.append((left, right))
    return segments


def _coverage(
    segments: list[Interval], busy: list[Interval], threshold_ns: int
) -> tuple[int, int, int, int]:
    """(wall, busy, idle in gaps above threshold, number of such gaps) within `segments`."""
    starts = [s for s, _ in busy]
    wall = covered = gap_sum = gap_count = 0
    for seg_start, seg_end in segments:
        wall += seg_end - seg_start
        cursor = seg_start
        index = max(bisect.bisect_right(starts, seg_start) - 1, 0)
        gaps = []
        for start, end in busy[index:]:
            if start >= seg_end:
                break
            start, end = max(start, seg_start), min(end, seg_end)
            if end <= cursor:
                continue
            if start > cursor:
                gaps.append(start - cursor)
            covered += end - max(start, cursor)
            cursor = end
        if seg_end > cursor:
            gaps.append(seg_end - cursor)
        long_gaps = [g for g in gaps if g > threshold_ns]
        gap_sum += sum(long_gaps)
        gap_count += len(long_gaps)
    return wall, covered, gap_sum, gap_count


def _top_level(ops: list[_Span]) -> list[_Span]:
    """Operators not nested inside another operator of the same thread."""
    top: list[_Span] = []
    open_end: dict[Any, int] = {}
    for op in sorted(ops, key=lambda o: (o.start, -o.end)):
        if op.start < open_end.get(op.tid, -1) and op.end <= open_end[op.tid]:
            continue
        top.append(op)
        open_end[op.tid] = op.end
    return top


def _is_launch(name: str) -> bool:
    return name.startswith(_LAUNCH_PREFIXES)


def trace_basis(trace: Mapping[str, Any]) -> str:
    """Basis of the trace: "cuda kernels" when it holds device kernels, else "cpu ops"."""
    events = trace.get("traceEvents", [])
    has_kernels = any(e.get("ph") == "X" and e.get("cat") == "kernel" for e in events)
    return "cuda kernels" if has_kernels else "cpu ops"


def device_time_us(trace: Mapping[str, Any]) -> float:
    """Total duration of all device activities (kernels, memcpy, memset) in the trace (us)."""
    events = trace.get("traceEvents", [])
    return float(sum(e.get("dur", 0) for e in events if e.get("cat") in _DEVICE_CATEGORIES))


def _labelled_events(
    trace: Mapping[str, Any], stage_labels: Iterable[str]
) -> tuple[list[dict[str, Any]], list[_Span]]:
    """The trace's complete events, and the spans of its stage labels among them."""
    labels = set(stage_labels)
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X" and "ts" in e]
    annotations = [
        _span(e) for e in events if e.get("cat") == "user_annotation" and e["name"] in labels
    ]
    return events, annotations


def _runtime_calls(events: list[dict[str, Any]]) -> list[tuple[Any, _Span]]:
    """The CUDA runtime and driver calls, each with the correlation id its kernels carry."""
    return [
        (event.get("args", {}).get("correlation"), _span(event))
        for event in events
        if event.get("cat") in ("cuda_runtime", "cuda_driver")
    ]


def trace_stage_totals(
    trace: Mapping[str, Any],
    stage_labels: Iterable[str] = STAGE_LABELS,
    gap_threshold_us: float = GAP_THRESHOLD_US,
) -> dict[str, StageTotals]:
    """Per exclusive stage, the sums behind the timeline metrics of one trace."""
    events, annotations = _labelled_events(trace, stage_labels)
    if not annotations:
        raise ValueError(
            f"trace has no stage labels ({', '.join(sorted(stage_labels))}); "
            "profile with record_function ranges for the stages"
        )
    if trace_basis(trace) == "cuda kernels":
        windows, activities, calls = _cuda_activities(events, annotations)
    else:
        windows, activities, calls = _cpu_activities(events, annotations)
    busy = _merge((a[1], a[2]) for a in activities)
    threshold_ns = _ns(gap_threshold_us)
    totals: dict[str, StageTotals] = {}
    for stage, segments in exclusive_segments(windows).items():
        wall, covered, gap_sum, gap_count = _coverage(segments, busy, threshold_ns)
        totals[stage] = StageTotals(
            wall_us=wall / 1000.0,
            busy_us=covered / 1000.0,
            idle_gap_us=gap_sum / 1000.0,
            idle_gaps=gap_count,
        )
    for stage, start, end in activities:
        if stage in totals:
            totals[stage].kernels += 1
            totals[stage].kernel_us += (end - start) / 1000.0
    for stage, duration_ns in calls:
        if stage in totals:
            totals[stage].launches += 1
            totals[stage].launch_call_us += duration_ns / 1000.0
    return totals


_Activity = tuple[str | None, int, int]  # exclusive stage (None outside labels), start, end


def _stage_of(annotations: list[_Span], tid: Any, at: int) -> str | None:
    span = _innermost(annotations, tid, at)
    return exclusive_stage(span.name) if span is not None else None


def _cpu_activities(
    events: list[dict[str, Any]], annotations: list[_Span]
) -> tuple[list[tuple[str, Interval]], list[_Activity], list[tuple[str | None, int]]]:
    threads = {a.tid for a in annotations}
    ops = [_span(e) for e in events if e.get("cat") == "cpu_op" and e.get("tid") in threads]
    top = _top_level(ops)
    activities = [(_stage_of(annotations, op.tid, op.start), op.start, op.end) for op in top]
    windows = [(a.name, (a.start, a.end)) for a in annotations]
    # On CPU every top-level operator is one "launch"; there is no separate runtime call.
    calls = [(stage, 0) for stage, _, _ in activities]
    return windows, activities, calls


def _cuda_activities(
    events: list[dict[str, Any]], annotations: list[_Span]
) -> tuple[list[tuple[str, Interval]], list[_Activity], list[tuple[str | None, int]]]:
    called = _runtime_calls(events)
    runtime = dict(called)
    calls = [
        (_stage_of(annotations, span.tid, span.start), span.end - span.start)
        for _, span in called
        if _is_launch(span.name)
    ]
    activities: list[_Activity] = []
    launched_at: list[tuple[Any, int]] = []
    for event in events:
        if event.get("cat") != "kernel":
            continue
        kernel = _span(event)
        call = runtime.get(event.get("args", {}).get("correlation"))
        stage = _stage_of(annotations, call.tid, call.start) if call is not None else None
        activities.append((stage, kernel.start, kernel.end))
        launched_at.append((call.tid, call.start) if call is not None else (None, -1))
    windows = []
    for label in annotations:
        inside = [
            (start, end)
            for (tid, at), (_, start, end) in zip(launched_at, activities, strict=True)
            if tid == label.tid and label.start <= at <= label.end
        ]
        if inside:
            windows.append((label.name, (min(s for s, _ in inside), max(e for _, e in inside))))
    return windows, activities, calls


def graph_replay_kernels(
    trace: Mapping[str, Any], stage_labels: Iterable[str] = STAGE_LABELS
) -> list[dict[str, Any]]:
    """Kernels a CUDA graph replay launched: name, exclusive stage (None outside every
    label) and duration (us). The stage is the label enclosing the replay's launch call, as
    for any kernel; torch.profiler links these kernels to no operator, so the operator
    tables take them from here."""
    events, annotations = _labelled_events(trace, stage_labels)
    replays = {
        correlation: span
        for correlation, span in _runtime_calls(events)
        if span.name.startswith(_GRAPH_LAUNCHES)
    }
    kernels = []
    for event in events:
        call = replays.get(event.get("args", {}).get("correlation"))
        if event.get("cat") != "kernel" or call is None:
            continue
        kernels.append(
            {
                "name": event["name"],
                "stage": _stage_of(annotations, call.tid, call.start),
                "device_us": float(event.get("dur", 0)),
            }
        )
    return kernels


def merge_stage_totals(per_trace: Iterable[Mapping[str, StageTotals]]) -> dict[str, StageTotals]:
    """Add the stage totals of several traces (pages)."""
    merged: dict[str, StageTotals] = {}
    for totals in per_trace:
        for stage, item in totals.items():
            merged.setdefault(stage, StageTotals()).add(item)
    return merged


def verdict(busy_fraction: float, mean_kernel_us: float | None) -> str:
    """Verdict of a stage by the rule in this module's docstring."""
    short = mean_kernel_us is not None and mean_kernel_us < LAUNCH_BOUND_MEAN_US
    if busy_fraction < LAUNCH_BOUND_BUSY and short:
        return "launch-bound"
    return "compute/memory-bound"


def timeline_metrics(totals: Mapping[str, StageTotals], basis: str) -> dict[str, dict[str, Any]]:
    """The `timeline` block of metrics.json: one entry per stage, plus combined stages.

    Keys: busy_fraction, launches, mean_kernel_us, launch_overhead_us (mean launch call on
    CUDA, None on CPU), idle_gap_ms and idle_gaps (gaps over 10 us), wall_ms, busy_ms (the
    time kernels cover), kernels (kernels, on CPU top-level operators), basis, verdict.
    """
    stages = {s: totals[s] for s in STAGES if s in totals}
    for combined, parts in COMBINED_STAGES.items():
        present = [stages[p] for p in parts if p in stages]
        if present:
            stages[combined] = merge_stage_totals([{combined: p} for p in present])[combined]
    cuda = basis == "cuda kernels"
    result: dict[str, dict[str, Any]] = {}
    for stage, item in stages.items():
        busy_fraction = item.busy_us / item.wall_us if item.wall_us > 0 else 0.0
        mean_kernel = item.kernel_us / item.kernels if item.kernels else None
        overhead = item.launch_call_us / item.launches if cuda and item.launches else None
        result[stage] = {
            "busy_fraction": busy_fraction,
            "launches": item.launches,
            "mean_kernel_us": mean_kernel,
            "launch_overhead_us": overhead,
            "idle_gap_ms": item.idle_gap_us / 1000.0,
            "idle_gaps": item.idle_gaps,
            "wall_ms": item.wall_us / 1000.0,
            "busy_ms": item.busy_us / 1000.0,
            "kernels": item.kernels,
            "basis": basis,
            "verdict": verdict(busy_fraction, mean_kernel),
        }
    return result


def with_pages(
    timeline: dict[str, dict[str, Any]],
    per_page: Mapping[str, Mapping[str, StageTotals]],
    basis: str,
    decode_steps: int,
) -> dict[str, dict[str, Any]]:
    """`timeline` with each stage's figures per page, so they can be set against the timing
    pass's times of the same pages.

    Adds `pages` (one entry per page: image_id and the page's wall_ms, busy_ms, kernels and
    launches in the stage) and `runs_per_page` (how often the stage ran on a page: the
    pass's decode steps for decode, else 1).
    """
    for image_id, totals in per_page.items():
        for stage, entry in timeline_metrics(totals, basis).items():
            page = {key: entry[key] for key in PAGE_KEYS}
            timeline[stage].setdefault("pages", []).append({"image_id": image_id, **page})
    for stage, entry in timeline.items():
        entry["runs_per_page"] = decode_steps if stage == "decode" else 1
    return timeline


def trace_timeline(traces: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Timeline metrics over several traces (one per page) of the same basis."""
    traces = list(traces)
    if not traces:
        raise ValueError("no traces to analyse; profile at least one page")
    bases = {trace_basis(t) for t in traces}
    if len(bases) > 1:
        raise ValueError("traces mix CPU-only and CUDA runs; analyse them separately")
    totals = merge_stage_totals(trace_stage_totals(t) for t in traces)
    return timeline_metrics(totals, bases.pop())

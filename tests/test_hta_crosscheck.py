"""The HTA cross-check: kernels and idle time per stage from device-side stage spans agree
with the timeline's launch-based attribution on a small hand-made trace, and so does HTA's
own attribution of kernels to annotations where HTA is installed."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.needs_tool import needs_tool

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import hta_crosscheck  # noqa: E402
from hta_crosscheck import (  # noqa: E402
    StageSide,
    comparison_rows,
    our_stage_times,
    windowed_stage_times,
)

from vlmprof.profiler.operators import MOE_LABEL  # noqa: E402

# Launch (ts) and kernel (ts, dur) of each correlation id, in microseconds.
LAUNCHES = {1: 15.0, 2: 20.0, 3: 60.0, 4: 130.0, 5: 140.0, 6: 142.0}
KERNELS = {1: (30.0, 5.0), 2: (35.0, 5.0), 3: (70.0, 10.0), 4: (150.0, 5.0), 5: (185.0, 5.0)}
KERNELS[6] = (192.5, 1.5)  # 2.5 us after kernel 5: a gap too short to count as idle
LABELS = {"prefill": (0.0, 100.0), "sam": (10.0, 30.0), "decode": (120.0, 80.0)}


def _x(name: str, cat: str, ts: float, dur: float, tid: int = 1, **args: object) -> dict:
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": 1,
        "tid": tid,
        "ts": ts,
        "dur": dur,
        "args": args,
    }


def _device_span(label: str) -> tuple[float, float]:
    """First start and last end of the kernels launched inside `label`, as torch records
    a gpu_user_annotation."""
    start, dur = LABELS[label]
    inside = [KERNELS[c] for c, at in LAUNCHES.items() if start <= at <= start + dur]
    first = min(ts for ts, _ in inside)
    return first, max(ts + d for ts, d in inside) - first


def cuda_trace(moe_label: bool = False) -> dict:
    """CPU labels, launches and kernels, and the device-side stage spans torch adds; with
    `moe_label`, the operator pass's label around an MoE block (kernel 3, in prefill) too."""
    events = [_x(label, "user_annotation", *span) for label, span in LABELS.items()]
    if moe_label:
        events.append(_x(MOE_LABEL, "user_annotation", 55.0, 10.0))
        events.append(_x(MOE_LABEL, "gpu_user_annotation", *KERNELS[3], tid=7, stream=7))
    for corr, ts in LAUNCHES.items():
        events.append(_x("cudaLaunchKernel", "cuda_runtime", ts, 2.0, correlation=corr))
    for corr, (ts, dur) in KERNELS.items():
        events.append(_x(f"k{corr}", "kernel", ts, dur, tid=7, correlation=corr, stream=7))
    for label in LABELS:
        events.append(_x(label, "gpu_user_annotation", *_device_span(label), tid=7, stream=7))
    return {"schemaVersion": 1, "traceEvents": events}


def _windows() -> tuple[list[tuple[int, int]], list[tuple[str, tuple[int, int]]]]:
    kernels = [(int(ts * 1000), int((ts + dur) * 1000)) for ts, dur in KERNELS.values()]
    windows = []
    for label in LABELS:
        start, dur = _device_span(label)
        windows.append((label, (int(start * 1000), int((start + dur) * 1000))))
    return kernels, windows


def test_windowing_matches_the_timeline_stage_by_stage() -> None:
    ours = our_stage_times(cuda_trace())
    windowed = windowed_stage_times(*_windows())
    assert set(windowed) == set(ours) == {"sam", "llm_prefill", "decode"}
    for stage, mine in ours.items():
        theirs = windowed[stage]
        assert theirs.kernels == mine.kernels, stage
        assert theirs.kernel_ms == pytest.approx(mine.kernel_ms), stage
        assert theirs.idle_ms == pytest.approx(mine.idle_ms), stage
    # Device windows: sam 30..40, prefill 30..80 (llm_prefill 40..80), decode 150..194.
    assert windowed["sam"] == StageSide(2, 0.010, 0.0, 0.0)
    assert windowed["llm_prefill"].idle_ms == pytest.approx(0.030)
    decode = windowed["decode"]
    assert (decode.kernels, decode.kernel_ms) == (3, pytest.approx(0.0115))
    # 155..185 counts as idle; the 2.5 us gap before the last kernel only in every-gap idle.
    assert decode.idle_ms == pytest.approx(0.030)
    assert decode.idle_all_ms == pytest.approx(0.0325)


def test_rows_flag_a_stage_outside_five_percent() -> None:
    ours = {"sam": StageSide(2, 1.0, 0.1), "decode": StageSide(3, 2.0, 0.5)}
    hta = {"sam": StageSide(2, 1.04, 0.1, 0.2), "decode": StageSide(3, 2.2, 0.5, 0.6)}
    rows = {row["stage"]: row for row in comparison_rows(ours, hta)}
    assert rows["sam"]["within 5%"] and rows["sam"]["difference"] == pytest.approx(0.04)
    assert not rows["decode"]["within 5%"]
    assert rows["decode"]["difference"] == pytest.approx(0.10)


def test_a_cpu_only_trace_is_reported_and_exits_zero(tmp_path: Path, capsys) -> None:
    trace = tmp_path / "page.json.gz"
    events = [_x("prefill", "user_annotation", 0, 50), _x("aten::mm", "cpu_op", 5, 20)]
    with gzip.open(trace, "wt") as handle:
        json.dump({"traceEvents": events}, handle)
    out = tmp_path / "hta.json"
    assert hta_crosscheck.main([str(trace), "--json", str(out)]) == 0
    assert "no GPU kernels" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["status"] == "no GPU kernels"
    assert written["args"]["traces"] == [str(trace)] and "git_commit" in written["provenance"]


@needs_tool(
    None
    if importlib.util.find_spec("hta")
    else "HolisticTraceAnalysis is not installed (the README's test command installs it)"
)
def test_hta_attributes_the_same_kernels_to_each_stage(tmp_path: Path) -> None:
    """HTA's `get_gpu_kernels_with_user_annotations` gives each kernel its innermost
    annotation; the MoE label inside prefill must not claim kernel 3 from LLM prefill."""
    trace = tmp_path / "page.json.gz"
    with gzip.open(trace, "wt") as handle:
        json.dump(cuda_trace(moe_label=True), handle)
    hta, whole = hta_crosscheck.hta_side(trace)
    ours = our_stage_times(cuda_trace(moe_label=True))
    assert ours["llm_prefill"].kernels == 1 and set(hta) == set(ours)
    for stage, mine in ours.items():
        assert hta[stage].kernels == mine.kernels
        assert hta[stage].kernel_ms == pytest.approx(mine.kernel_ms)
        assert hta[stage].idle_ms == pytest.approx(mine.idle_ms)
    assert whole["device_ms"] == pytest.approx(sum(d for _, d in KERNELS.values()) / 1000)

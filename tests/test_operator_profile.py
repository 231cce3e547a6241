"""The operator pass on CPU with the small preset, and its tables and timeline on fixed data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageDraw

from tests.records import page_record
from vlmprof.metrics.aggregate import per_image_table
from vlmprof.metrics.dilation import against_timing_pass
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.profiler.operator_profile import run_operator_profile
from vlmprof.profiler.operators import (
    CATEGORIES,
    STAGES,
    attribution,
    categorize,
    categorize_kernel,
    graph_replay_frame,
    operator_table,
    stage_consistency,
    stage_totals_ms,
)
from vlmprof.profiler.timeline import (
    exclusive_segments,
    graph_replay_kernels,
    load_trace,
    trace_stage_totals,
    trace_timeline,
    verdict,
)

TIMELINE_KEYS = {
    "busy_fraction",
    "launches",
    "mean_kernel_us",
    "launch_overhead_us",
    "idle_gap_ms",
    "idle_gaps",
    "wall_ms",
    "busy_ms",
    "kernels",
    "basis",
    "verdict",
    "pages",
    "runs_per_page",
}
MAX_NEW_TOKENS = 4


def _page(text: str) -> Image.Image:
    page = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(page)
    for row in range(12):
        draw.text((80, 80 + 120 * row), f"{text} line {row}", fill="black")
    return page


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Two pages of the small preset in base mode, profiled on CPU."""
    adapter = build_adapter(ModelSpec(preset="small", mode="base"))
    out_dir = tmp_path_factory.mktemp("ops")
    pages = [("page-a", _page("alpha")), ("page-b", _page("beta"))]
    summary = run_operator_profile(
        adapter, pages, max_new_tokens=MAX_NEW_TOKENS, warmup_rounds=1, out_dir=out_dir, top_n=8
    )
    return out_dir, summary


def test_operator_pass_attributes_cpu_time_to_stages(base_run: tuple[Path, dict]) -> None:
    out_dir, summary = base_run
    attribution = summary["attribution"]
    assert attribution["basis"] == "cpu"
    assert attribution["attributed_share"] >= 0.95
    totals = summary["stage_totals_ms"]
    for stage in STAGES:
        assert totals[stage] > 0, stage
    assert sum(totals.values()) == pytest.approx(attribution["total_ms"], rel=1e-9)
    assert sum(summary["categories_ms"].values()) == pytest.approx(attribution["total_ms"])


def test_operator_tables_are_written_and_consistent(base_run: tuple[Path, dict]) -> None:
    out_dir, summary = base_run
    table = pd.read_csv(out_dir / "operators.csv")
    assert len(table) > 8
    assert table["self (ms)"].is_monotonic_decreasing
    assert set(table["category"]) <= set(CATEGORIES)
    # Every operator row, summed per stage column, gives the stage totals.
    for stage, total in summary["stage_totals_ms"].items():
        assert table[f"{stage} (ms)"].sum() == pytest.approx(total, abs=1e-6)
    markdown = (out_dir / "operators.md").read_text()
    assert "## By category" in markdown and "| aten::" in markdown
    # MoE blocks are labelled, so routed and shared experts count as moe.
    assert summary["categories_ms"]["moe"] > 0
    assert summary["categories_ms"]["attention"] > 0


def test_traces_are_gzip_chrome_traces(base_run: tuple[Path, dict]) -> None:
    out_dir, _ = base_run
    for image_id in ("page-a", "page-b"):
        path = out_dir / "traces" / f"{image_id}.json.gz"
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            trace = json.load(handle)
        labels = {e["name"] for e in trace["traceEvents"] if e.get("cat") == "user_annotation"}
        assert {"sam", "clip", "projector", "prefill", "decode"} <= labels
    assert not list((out_dir / "traces").glob(".*"))


def test_timeline_has_every_stage_and_key(base_run: tuple[Path, dict]) -> None:
    out_dir, summary = base_run
    timeline = json.loads((out_dir / "timeline.json").read_text())
    assert timeline == json.loads(json.dumps(summary["timeline"]))
    assert set(timeline) == {*STAGES, "prefill"}
    for stage, entry in timeline.items():
        assert set(entry) == TIMELINE_KEYS, stage
        assert entry["basis"] == "cpu ops"
        assert 0 < entry["busy_fraction"] <= 1
        assert entry["launches"] > 0
        assert entry["launch_overhead_us"] is None
        assert entry["verdict"] in ("launch-bound", "compute/memory-bound")
    # Each page generates MAX_NEW_TOKENS - 1 decode steps, each many top-level ATen calls.
    assert timeline["decode"]["launches"] > 2 * (MAX_NEW_TOKENS - 1)
    parts = sum(timeline[s]["wall_ms"] for s in ("sam", "clip", "projector", "llm_prefill"))
    assert timeline["prefill"]["wall_ms"] == pytest.approx(parts)


def test_timeline_keeps_each_pages_figures(base_run: tuple[Path, dict]) -> None:
    timeline = base_run[1]["timeline"]
    for stage, entry in timeline.items():
        assert [page["image_id"] for page in entry["pages"]] == ["page-a", "page-b"]
        for key in ("wall_ms", "busy_ms", "kernels", "launches"):
            assert sum(page[key] for page in entry["pages"]) == pytest.approx(entry[key]), key
        assert entry["busy_ms"] == pytest.approx(entry["busy_fraction"] * entry["wall_ms"])
        assert entry["runs_per_page"] == (MAX_NEW_TOKENS - 1 if stage == "decode" else 1)


def test_a_cpu_trace_is_set_against_the_timing_pass(base_run: tuple[Path, dict]) -> None:
    """Timing records that took half of each page's profiled stage time: dilation 2, and the
    busy fraction against them twice the profiler's (at most 1)."""
    timeline = base_run[1]["timeline"]
    half = {
        page["image_id"]: {stage: timeline[stage]["pages"][i]["wall_ms"] / 2 for stage in STAGES}
        for i, page in enumerate(timeline["decode"]["pages"])
    }
    records = [
        page_record(
            image_id,
            (1240, 1754),
            sam_ms=t["sam"],
            clip_ms=t["clip"],
            projector_ms=t["projector"],
            vision_ms=t["sam"] + t["clip"] + t["projector"],
            prefill_ms=t["sam"] + t["clip"] + t["projector"] + t["llm_prefill"],
            decode_ms=t["decode"],
            decode_step_ms=[t["decode"] / (MAX_NEW_TOKENS - 1)] * (MAX_NEW_TOKENS - 1),
        )
        for image_id, t in half.items()
    ]
    timed = against_timing_pass(timeline, per_image_table(records))
    for stage in (*STAGES, "prefill"):
        entry = timed[stage]
        assert entry["timed_pages"] == 2
        assert entry["dilation"] == pytest.approx(2.0), stage
        expected = min(2 * entry["busy_fraction"], 1.0)
        assert entry["busy_fraction_timed"] == pytest.approx(expected), stage
        assert entry["launch_overhead_us_timed"] is None


def test_timeline_wall_matches_label_ranges(base_run: tuple[Path, dict]) -> None:
    out_dir, _ = base_run
    trace = load_trace(out_dir / "traces" / "page-a.json.gz")
    ranges = {
        e["name"]: e["dur"] / 1000.0
        for e in trace["traceEvents"]
        if e.get("cat") == "user_annotation"
    }
    timeline = trace_timeline([trace])
    assert timeline["decode"]["wall_ms"] == pytest.approx(ranges["decode"], abs=1e-3)
    assert timeline["sam"]["wall_ms"] == pytest.approx(ranges["sam"], abs=1e-3)
    assert timeline["prefill"]["wall_ms"] == pytest.approx(ranges["prefill"], abs=1e-3)


def test_gundam_page_attributes_crops_and_global_view(tmp_path: Path) -> None:
    adapter = build_adapter(ModelSpec(preset="small", mode="gundam", max_crops=2))
    page = Image.new("RGB", (1754, 1240), "white")
    summary = run_operator_profile(adapter, [("wide", page)], 2, 0, tmp_path, top_n=5)
    assert summary["attribution"]["attributed_share"] >= 0.95
    assert summary["timeline"]["sam"]["launches"] > 0
    trace = load_trace(tmp_path / "traces" / "wide.json.gz")
    names = [e["name"] for e in trace["traceEvents"] if e.get("cat") == "user_annotation"]
    # Two crops, then the global view: SAM, CLIP and the projector run once for each.
    assert names.count("sam") == names.count("clip") == names.count("projector") == 2


@pytest.mark.parametrize(
    ("ids", "message"),
    [([], "no readable page"), (["a", "a"], "must be unique"), (["../a"], "cannot name")],
)
def test_unusable_pages_are_rejected_before_profiling(
    tmp_path: Path, ids: list[str], message: str
) -> None:
    adapter = build_adapter(ModelSpec(preset="small", mode="base"))
    pages = [(image_id, Image.new("RGB", (64, 64), "white")) for image_id in ids]
    with pytest.raises(ValueError, match=message):
        run_operator_profile(adapter, pages, 2, 1, tmp_path)
    assert not any(tmp_path.iterdir())


def _event_frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "operator": name,
                "stage": stage,
                "category": category,
                "self_cpu_us": us,
                "total_cpu_us": us,
                "self_device_us": 0.0,
                "total_device_us": 0.0,
                "mem_bytes": 0,
            }
            for name, stage, category, us in rows
        ]
    )


def test_consistency_flags_a_top_table_that_lost_time() -> None:
    frame = _event_frame(
        [
            ("aten::mm", "decode", "dense_gemm", 300.0),
            ("aten::mm", "sam", "dense_gemm", 100.0),
            ("aten::add", "sam", "elementwise", 50.0),
            ("aten::cat", "unattributed", "copies", 5.0),
        ]
    )
    top = operator_table(frame, top_n=1)
    assert top.loc[0, "stage"] == "decode"
    assert top.loc[0, "share of stage"] == pytest.approx(1.0)
    assert stage_totals_ms(frame)["sam"] == pytest.approx(0.15)
    good = stage_consistency(frame, top)
    assert good["difference (ms)"].abs().max() == pytest.approx(0.0)
    broken = top.copy()
    broken["sam (ms)"] = 0.0
    bad = stage_consistency(frame, broken).set_index("stage")
    assert bad.loc["sam", "difference (ms)"] == pytest.approx(-0.1)


@pytest.mark.parametrize(
    ("name", "in_moe", "in_attention", "category"),
    [
        ("aten::mm", True, False, "moe"),
        ("aten::mm", False, False, "dense_gemm"),
        ("aten::bmm", False, False, "attention"),
        ("aten::copy_", False, True, "attention"),
        ("aten::_safe_softmax", False, False, "attention"),
        ("aten::_cudnn_attention_forward", False, False, "attention"),
        ("aten::topk", False, False, "moe"),
        ("aten::mkldnn_convolution", False, False, "convolution"),
        ("aten::rsqrt", False, False, "normalisation"),
        ("aten::native_layer_norm", False, False, "normalisation"),
        ("aten::copy_", False, False, "copies"),
        ("Memcpy HtoD (Pageable -> Device)", False, False, "copies"),
        ("aten::mul_", False, False, "elementwise"),
        ("aten::view", False, False, "other"),
    ],
)
def test_categorize(name: str, in_moe: bool, in_attention: bool, category: str) -> None:
    assert categorize(name, in_moe, in_attention) == category


def _x(name: str, cat: str, ts: float, dur: float, tid: int = 1, **args: object) -> dict:
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "tid": tid, "args": args}


def small_cuda_trace() -> dict:
    """One page on a GPU: labels, five launch calls of 2 us and the kernels they launched."""
    events = [
        _x("prefill", "user_annotation", 0, 100),
        _x("sam", "user_annotation", 10, 30),
        _x("decode", "user_annotation", 120, 50),
    ]
    launches = [(15, 1), (20, 2), (60, 3), (130, 4), (140, 5)]
    kernels = [(30, 5, 1), (35, 5, 2), (70, 10, 3), (150, 5, 4), (185, 5, 5)]
    for ts, corr in launches:
        events.append(_x("cudaLaunchKernel", "cuda_runtime", ts, 2, correlation=corr))
    for ts, dur, corr in kernels:
        events.append(_x(f"k{corr}", "kernel", ts, dur, tid=7, correlation=corr))
    return {"traceEvents": events}


def test_cuda_timeline_from_a_small_trace() -> None:
    """Kernels join stages through their launch calls; gaps and busy time on the device."""
    timeline = trace_timeline([small_cuda_trace()])
    sam, llm, decode = timeline["sam"], timeline["llm_prefill"], timeline["decode"]
    assert sam["basis"] == "cuda kernels"
    # Device windows: sam 30..40, prefill 30..80 (so llm_prefill 40..80), decode 150..190.
    assert sam["wall_ms"] == pytest.approx(0.010)
    assert sam["busy_fraction"] == pytest.approx(1.0)
    assert llm["wall_ms"] == pytest.approx(0.040)
    assert llm["busy_fraction"] == pytest.approx(0.25)
    assert (llm["idle_gaps"], llm["idle_gap_ms"]) == (1, pytest.approx(0.030))
    assert decode["idle_gaps"] == 1 and decode["idle_gap_ms"] == pytest.approx(0.030)
    assert decode["launches"] == 2 and decode["launch_overhead_us"] == pytest.approx(2.0)
    assert decode["mean_kernel_us"] == pytest.approx(5.0)
    assert decode["verdict"] == "launch-bound"
    assert timeline["prefill"]["launches"] == 3


def graph_replay_trace() -> dict:
    """A decode step replayed from a CUDA graph, laid out as torch.profiler writes it: one
    cudaGraphLaunch (correlation 9) inside the decode label and the three kernels it ran,
    all carrying the launch's correlation; plus one ordinary launch before it."""
    events = [
        _x("decode", "user_annotation", 0, 100),
        _x("cudaMemcpyAsync", "cuda_runtime", 5, 2, correlation=8),
        _x("cudaGraphLaunch", "cuda_runtime", 10, 6, correlation=9),
        _x("Memcpy HtoD (Pageable -> Device)", "gpu_memcpy", 8, 1, tid=7, correlation=8),
    ]
    names = [
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>",
        "nvjet_tst_128x256_64x4_2x1_v_bz_coopA_NNT",
        "void pytorch_flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<64>>(Params)",
    ]
    for index, name in enumerate(names):
        events.append(_x(name, "kernel", 20 + 10 * index, 8, tid=7, correlation=9))
    return {"traceEvents": events}


def test_graph_replayed_kernels_land_in_the_stage_that_replayed_them() -> None:
    kernels = graph_replay_kernels(graph_replay_trace())
    assert [k["stage"] for k in kernels] == ["decode"] * 3
    frame = graph_replay_frame(kernels)
    assert list(frame["operator"]) == [
        "[graph] at::native::vectorized_elementwise_kernel",
        "[graph] nvjet_tst_128x256_64x4_2x1_v_bz_coopA_NNT",
        "[graph] pytorch_flash::flash_fwd_splitkv_kernel",
    ]
    assert list(frame["category"]) == ["elementwise", "dense_gemm", "attention"]
    assert frame["self_device_us"].sum() == pytest.approx(24.0)
    # every replayed microsecond is attributed, against all device time in the trace
    assert attribution(frame, device_total_us=24.0)["attributed_share"] == pytest.approx(1.0)
    assert stage_totals_ms(frame)["decode"] == pytest.approx(0.024)


def test_a_graph_launch_is_one_launch_of_all_its_kernels() -> None:
    decode = trace_timeline([graph_replay_trace()])["decode"]
    assert decode["kernels"] == 3
    assert decode["launches"] == 1  # the memcpy call is no kernel launch
    assert decode["launch_overhead_us"] == pytest.approx(6.0)


def test_kernels_without_a_graph_launch_are_not_replays() -> None:
    assert graph_replay_kernels(small_cuda_trace()) == []
    outside = graph_replay_trace()
    outside["traceEvents"][0]["name"] = "not a stage"
    outside["traceEvents"].append(_x("prefill", "user_annotation", 500, 10))
    assert {k["stage"] for k in graph_replay_kernels(outside)} == {None}
    assert set(graph_replay_frame(graph_replay_kernels(outside))["stage"]) == {"unattributed"}


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "dense_gemm"),
        ("void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm>", "dense_gemm"),
        (
            "void fmha_cutlassF_bf16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::Params)",
            "attention",
        ),
        ("void cudnn::ops::nchwToNhwcKernel<__nv_bfloat16>", "other"),
        ("implicit_convolve_sgemm", "convolution"),
        (
            "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float>",
            "normalisation",
        ),
        ("void at::native::index_elementwise_kernel<128, 4>", "copies"),
        ("void at::native::reduce_kernel<512, 1>", "other"),
    ],
)
def test_kernels_are_categorised_by_name(name: str, category: str) -> None:
    assert categorize_kernel(name) == category


def test_trace_without_stage_labels_is_rejected() -> None:
    with pytest.raises(ValueError, match="no stage labels"):
        trace_stage_totals({"traceEvents": [_x("aten::mm", "cpu_op", 0, 5)]})


def test_exclusive_segments_and_verdict() -> None:
    windows = [("prefill", (0, 100)), ("sam", (10, 40)), ("clip", (40, 60))]
    assert exclusive_segments(windows) == {
        "llm_prefill": [(0, 10), (60, 100)],
        "sam": [(10, 40)],
        "clip": [(40, 60)],
    }
    assert verdict(0.3, 5.0) == "launch-bound"
    assert verdict(0.3, 50.0) == "compute/memory-bound"
    assert verdict(0.9, 5.0) == "compute/memory-bound"


# A real trace: the operator pass over one page of the small preset on an H100, SAM, CLIP,
# the projector and each decode step replayed from CUDA graphs (recorded by
# benchmarks/graph_replay_trace.py; docs/measurements/graph-replay-h100/).
RECORDED_REPLAY = Path(__file__).parent / "data" / "graph-replay-h100.json.gz"


def test_a_recorded_traces_replayed_kernels_land_in_the_stages_that_replayed_them() -> None:
    trace = json.loads(gzip.decompress(RECORDED_REPLAY.read_bytes()))
    kernels = graph_replay_kernels(trace)
    # Every kernel of the trace whose launch was a graph replay, each once.
    launches = {
        event["args"]["correlation"]
        for event in trace["traceEvents"]
        if event.get("cat") == "cuda_runtime" and event["name"] == "cudaGraphLaunch"
    }
    replayed = [
        event
        for event in trace["traceEvents"]
        if event.get("cat") == "kernel" and event["args"].get("correlation") in launches
    ]
    assert len(kernels) == len(replayed) > 800
    per_stage: dict[str, float] = {}
    for kernel in kernels:
        per_stage[kernel["stage"]] = per_stage.get(kernel["stage"], 0.0) + kernel["device_us"]
    # Vision's three stages and decode were replayed; LLM prefill (eager) launched none.
    assert set(per_stage) == {"sam", "clip", "projector", "decode"}
    assert per_stage["sam"] > per_stage["decode"] > per_stage["clip"] > per_stage["projector"]
    frame = graph_replay_frame(kernels)
    assert frame["self_device_us"].sum() == pytest.approx(sum(event["dur"] for event in replayed))
    assert set(frame["stage"]) == {"sam", "clip", "projector", "decode"}

"""The operator pass: torch.profiler over a few pages, separate from the timing pass.

Each page's generation runs under its own profiler session, with the stage labels of the
timing pass (sam, clip, projector, prefill, decode as `record_function` ranges) and a label
around every mixture-of-experts block, so each operator can be attributed to a stage and
MoE work told apart from dense layers. Writes one compressed Chrome/Perfetto trace per page,
the operator tables and the per-stage timeline numbers.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image
from torch.profiler import ProfilerActivity, profile, record_function

from vlmprof.atomic import atomic_open, write_json_atomic, write_text_atomic
from vlmprof.models.base import ModelAdapter
from vlmprof.profiler.operators import (
    MOE_LABEL,
    attribution,
    category_rollup,
    graph_replay_frame,
    op_event_frame,
    operator_table,
    operators_markdown,
    stage_consistency,
    stage_totals_ms,
)
from vlmprof.profiler.timeline import (
    device_time_us,
    graph_replay_kernels,
    load_trace,
    merge_stage_totals,
    timeline_metrics,
    trace_basis,
    trace_stage_totals,
    with_pages,
)
from vlmprof.progress import Progress
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.untimed_runs import warm_up

log = logging.getLogger(__name__)


@contextmanager
def moe_block_labels(module: torch.nn.Module) -> Iterator[None]:
    """Open a `MOE_LABEL` profiler range around every module that has an `experts` child.

    Expert GEMMs lower to the same `aten::mm` as dense layers, so only the enclosing module
    tells them apart.
    """
    blocks = [
        m for m in module.modules() if isinstance(getattr(m, "experts", None), torch.nn.Module)
    ]
    ranges: list[Any] = []

    def enter(_module: torch.nn.Module, _args: Any) -> None:
        ranges.append(record_function(MOE_LABEL))
        ranges[-1].__enter__()

    def leave(_module: torch.nn.Module, _args: Any, _output: Any) -> None:
        ranges.pop().__exit__(None, None, None)

    handles = []
    for block in blocks:
        handles.append(block.register_forward_pre_hook(enter))
        handles.append(block.register_forward_hook(leave))
    try:
        yield
    finally:
        detach(handles)


def _activities(device: torch.device) -> list[ProfilerActivity]:
    if device.type == "cuda":
        return [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    return [ProfilerActivity.CPU]


def _trace_path(traces_dir: Path, image_id: str) -> Path:
    if not image_id or Path(image_id).name != image_id or image_id.startswith("."):
        raise ValueError(
            f"image id {image_id!r} cannot name a trace file; use ids without path separators"
        )
    return traces_dir / f"{image_id}.json.gz"


def write_trace_gz(prof: profile, path: Path) -> dict[str, Any]:
    """Export the profiler's Chrome trace to `path` (gzip, atomic); returns the trace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".trace-") as scratch:
        plain = Path(scratch) / "trace.json"
        prof.export_chrome_trace(str(plain))
        trace = load_trace(plain)
        with (
            atomic_open(path, "wb") as handle,
            gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as packed,
            plain.open("rb") as source,
        ):
            shutil.copyfileobj(source, packed)
    return trace


def profile_page(
    adapter: ModelAdapter, page: Image.Image, max_new_tokens: int, trace_path: Path
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One labelled generation under torch.profiler: its operator events (kernels replayed
    from CUDA graphs among them) and its trace."""
    inputs = adapter.preprocess(page).to(adapter.device, adapter.dtype)
    cuda = adapter.device.type == "cuda"
    instruments = Instruments(None, NvtxRanges(enabled=True), record_functions=True)
    handles = attach_stage_hooks(adapter.module, adapter.stage_modules(), instruments)
    try:
        with (
            moe_block_labels(adapter.module),
            profile(
                activities=_activities(adapter.device),
                record_shapes=True,
                profile_memory=True,
                with_stack=False,
            ) as prof,
        ):
            greedy_generate(adapter, inputs, max_new_tokens, instruments)
            if cuda:
                torch.cuda.synchronize()
    finally:
        detach(handles)
    trace = write_trace_gz(prof, trace_path)
    replayed = graph_replay_frame(graph_replay_kernels(trace))
    frame = op_event_frame(prof.events())
    return pd.concat([frame, replayed], ignore_index=True) if len(replayed) else frame, trace


def run_operator_profile(
    adapter: ModelAdapter,
    pages: list[tuple[str, Image.Image]],
    max_new_tokens: int,
    warmup_rounds: int,
    out_dir: Path,
    top_n: int = 20,
    progress_label: str = "operator pass",
) -> dict[str, Any]:
    """Warm up, profile every page, and write traces, operator tables and timeline numbers.

    Outputs under `out_dir`: traces/<image_id>.json.gz, operators.csv (every operator),
    operators.md (top `top_n`, category rollup, checks) and timeline.json (the `timeline`
    block of metrics.json). Returns a summary: attribution, stage totals (ms), category
    times (ms), timeline and the profiled image ids. Progress goes to standard error
    between pages, under `progress_label`.
    """
    if not pages:
        raise ValueError("operators.images: no readable page to profile; check the subset")
    ids = [image_id for image_id, _ in pages]
    if len(set(ids)) != len(ids):
        raise ValueError("operators.images: image ids must be unique; each names a trace file")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens: must be at least 1 for the operator pass")
    out_dir = Path(out_dir)
    trace_paths = [_trace_path(out_dir / "traces", image_id) for image_id in ids]
    progress = Progress(progress_label, len(pages))
    warm_up(adapter, [page for _, page in pages], warmup_rounds, max_new_tokens)
    frames, stage_totals, device_us, bases = [], [], 0.0, set()
    for index, (image_id, page) in enumerate(pages, start=1):
        trace_path = trace_paths[index - 1]
        frame, trace = profile_page(adapter, page, max_new_tokens, trace_path)
        frames.append(frame)
        stage_totals.append(trace_stage_totals(trace))
        device_us += device_time_us(trace)
        bases.add(trace_basis(trace))
        log.info(
            "operator pass: page %d/%d %s, %d operator events",
            index,
            len(pages),
            image_id,
            len(frame),
        )
        progress.step(f"page {index}/{len(pages)} ({image_id})")
    events = pd.concat(frames, ignore_index=True)
    summary = attribution(events, device_total_us=device_us)
    table = operator_table(events)
    top = table.head(top_n)
    rollup = category_rollup(events)
    consistency = stage_consistency(events, top)
    basis = bases.pop()
    timeline = with_pages(
        timeline_metrics(merge_stage_totals(stage_totals), basis),
        dict(zip(ids, stage_totals, strict=True)),
        basis,
        decode_steps=max_new_tokens - 1,
    )
    with atomic_open(out_dir / "operators.csv") as handle:
        table.to_csv(handle, index=False)
    write_text_atomic(
        out_dir / "operators.md", operators_markdown(top, rollup, summary, consistency)
    )
    write_json_atomic(out_dir / "timeline.json", timeline)
    return {
        "images": ids,
        "attribution": summary,
        "stage_totals_ms": stage_totals_ms(events),
        "categories_ms": dict(zip(rollup["category"], rollup["self (ms)"], strict=True)),
        "timeline": timeline,
    }

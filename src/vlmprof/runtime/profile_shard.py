"""The timing pass of one shard: build once, warm up, then every image x repeat.

Each image x repeat becomes one run record. A page that cannot be read, or a run that
fails (out of memory included), becomes a `status: error` record with a one-line reason
and the shard goes on. Records stream into a temporary file that is renamed over the
output only when the shard is complete.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image

from vlmprof.atomic import atomic_open
from vlmprof.data.image_loader import ImageLoadError, load_page
from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.runtime.device import dtype_name
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.records import RunRecord
from vlmprof.runtime.stage_timer import StageTimer

log = logging.getLogger(__name__)

WARMUP_PAGE_SIZE = (1240, 1754)  # A4 portrait at 150 dpi


@dataclass(frozen=True)
class ProfileSettings:
    """What the timing pass does with each image."""

    run_id: str
    shard: int
    repeats: int = 3
    warmup_rounds: int = 1
    warmup_synthetic: bool = True
    warmup_per_image: bool = True
    max_new_tokens: int = 32
    ignore_eos: bool = True
    eos_id: int | None = None
    max_pixels: int = 50_000_000
    nvtx: bool = True


def timed_run(
    adapter: ModelAdapter, inputs: ModelInputs, settings: ProfileSettings, nvtx: NvtxRanges
) -> dict[str, object]:
    """One instrumented generation; returns the timing fields of a run record."""
    cuda = adapter.device.type == "cuda"
    timer = StageTimer(adapter.device.type)
    instruments = Instruments(timer, nvtx)
    handles = attach_stage_hooks(adapter.module, adapter.stage_modules(), instruments)
    peak: dict[str, int] = {}
    try:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        eos = None if settings.ignore_eos else settings.eos_id
        tokens = greedy_generate(adapter, inputs, settings.max_new_tokens, instruments, eos)
        times = timer.finish()
        if cuda:
            peak["run"] = int(torch.cuda.max_memory_allocated())
    finally:
        detach(handles)
    stage = timer.total_ms
    sub = [stage(name) for name in ("sam", "clip", "projector")]
    return {
        "tokens": int(tokens.numel()),
        "prefill_ms": stage("prefill"),
        "decode_ms": stage("decode"),
        "ttft_ms": stage("ttft"),
        "sam_ms": sub[0],
        "clip_ms": sub[1],
        "projector_ms": sub[2],
        "vision_ms": float(sum(v for v in sub if v is not None)) if any(sub) else None,
        "decode_step_ms": [round(ms, 4) for ms in times.get("decode_step", [])],
        "peak_mem_bytes": peak,
    }


def warm_up(adapter: ModelAdapter, pages: Sequence[Image.Image], settings: ProfileSettings) -> None:
    """Run untimed generations so one-off costs (allocator, kernels, caches) stay out."""
    nvtx = NvtxRanges(enabled=False)
    for round_index in range(settings.warmup_rounds):
        page = pages[round_index % len(pages)]
        inputs = adapter.preprocess(page).to(adapter.device, adapter.dtype)
        greedy_generate(adapter, inputs, settings.max_new_tokens, Instruments(None, nvtx))
    if adapter.device.type == "cuda":
        torch.cuda.synchronize()


def free_memory(device: torch.device) -> None:
    """Drop cached blocks after a failed run so the next image starts clean."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def profile_images(
    adapter: ModelAdapter,
    images: Sequence[tuple[str, Path]],
    settings: ProfileSettings,
    out_path: Path,
) -> list[RunRecord]:
    """Profile `images` ((image_id, path) pairs) and write their records to `out_path`."""
    nvtx = NvtxRanges(enabled=settings.nvtx)
    base = {"device": str(adapter.device), "dtype": dtype_name(adapter.dtype)}
    warm_pages = [Image.new("RGB", WARMUP_PAGE_SIZE, "white")] if settings.warmup_synthetic else []
    records: list[RunRecord] = []
    with atomic_open(out_path) as handle:

        def emit(record: RunRecord) -> None:
            records.append(record)
            handle.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
            handle.flush()

        warmed = False
        for index, (image_id, path) in enumerate(images, start=1):
            common = {"run_id": settings.run_id, "image_id": image_id, "shard": settings.shard}
            start = time.perf_counter()
            try:
                page = load_page(Path(path), settings.max_pixels)
                load_ms = _elapsed_ms(start)
                start = time.perf_counter()
                inputs_cpu = adapter.preprocess(page)
                preprocess_ms = _elapsed_ms(start)
            except (ImageLoadError, OSError, ValueError) as error:
                reason = f"{type(error).__name__}: {error}".splitlines()[0]
                log.warning("image %s (%s) skipped: %s", image_id, path, reason)
                for repeat in range(settings.repeats):
                    emit(RunRecord(**common, repeat=repeat, status="error", error=reason, **base))
                continue
            if not warmed:
                warm_up(adapter, warm_pages or [page], settings)
                warmed = True
            if settings.warmup_per_image:
                # The first run of a new input shape pays one-off costs (allocator growth,
                # kernel selection): on an H100 it took up to 2.5x the later repeats.
                warm_up(adapter, [page], replace(settings, warmup_rounds=1))
            facts = {
                "mode": inputs_cpu.mode,
                "n_crops": inputs_cpu.n_crops,
                "image_tokens": inputs_cpu.image_tokens,
                "prefill_len": inputs_cpu.prefill_len,
                "load_ms": load_ms,
                "preprocess_ms": preprocess_ms,
            }
            for repeat in range(settings.repeats):
                if repeat == 1:
                    # Loading and preprocessing happen once per image: only repeat 0 has them.
                    facts = {**facts, "load_ms": None, "preprocess_ms": None}
                try:
                    inputs = inputs_cpu.to(adapter.device, adapter.dtype)
                    timing = timed_run(adapter, inputs, settings, nvtx)
                    record = RunRecord(**common, repeat=repeat, **facts, **timing, **base)
                except (torch.OutOfMemoryError, RuntimeError) as error:
                    reason = f"{type(error).__name__}: {error}".splitlines()[0]
                    free_memory(adapter.device)
                    record = RunRecord(
                        **common, repeat=repeat, status="error", error=reason, **facts, **base
                    )
                emit(record)
                log.info(
                    "shard %d image %d/%d %s repeat %d/%d: %s",
                    settings.shard,
                    index,
                    len(images),
                    image_id,
                    repeat + 1,
                    settings.repeats,
                    "error: " + str(record.error)
                    if record.status == "error"
                    else f"prefill {record.prefill_ms:.1f} ms, decode {record.decode_ms:.1f} ms",
                )
    return records

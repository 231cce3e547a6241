"""The timing pass of one shard: build once, warm up, then every image x repeat.

Each image x repeat becomes one run record. A page that cannot be read, or a run that
fails (out of memory included), becomes a `status: error` record with a one-line reason
and the shard goes on. Records stream into a temporary file that is renamed over the
output only when the shard is complete. A shard in which no run succeeded then fails with
its first error, so the run never goes on to aggregate nothing.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from PIL import Image

from vlmprof.atomic import atomic_open
from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.placement import Placement
from vlmprof.progress import Progress
from vlmprof.records import RunRecord, did_not_fit
from vlmprof.runtime.collector import collector_paused
from vlmprof.runtime.generate import GenerationCapture, generate_batch
from vlmprof.runtime.host_counters import host_delta, read_host
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvml import nvml_device
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.page_source import error_reason, loaded_pages, page_inputs
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.stage_timer import StageTimer
from vlmprof.runtime.telemetry import TelemetrySampler, series_dict, summarize_run
from vlmprof.stages import VISION_PARTS, record_field

log = logging.getLogger(__name__)

WARMUP_PAGE_SIZE = (1240, 1754)  # A4 portrait at 150 dpi
# Record fields measured once per page (on its first repeat), cleared on the others.
ONCE_PER_PAGE: dict[str, None] = dict.fromkeys(
    ("load_ms", "preprocess_ms", "input_wait_ms", "host_span_s", "wait_span_s", "warmup_ms")
)


class ShardFailedError(RuntimeError):
    """Every run of a shard failed; the message names the shard and its first error."""


def _stage_windows(
    run_t0: float, run_t1: float, prefill_ms: float | None, decode_ms: float | None
) -> dict[str, tuple[float, float]]:
    """Host-clock windows of prefill, decode and the whole run.

    Only the run's bounds are read on the host, where the device is idle (before the run,
    and after the timer's one synchronisation); the boundary in between is placed by the
    stage timer's own durations, so no synchronisation enters the timed region.
    """
    prefill_end = min(run_t0 + (prefill_ms or 0.0) / 1000.0, run_t1)
    decode_start = max(run_t1 - (decode_ms or 0.0) / 1000.0, prefill_end)
    return {
        "prefill": (run_t0, prefill_end),
        "decode": (decode_start, run_t1),
        "run": (run_t0, run_t1),
    }


def timed_run(
    adapter: ModelAdapter,
    batch: Sequence[ModelInputs],
    settings: ProfileSettings,
    nvtx: NvtxRanges,
    sampler: TelemetrySampler | None = None,
    keep_series: bool = False,
) -> dict[str, object]:
    """One instrumented generation of a batch of pages (often one); returns the timing
    fields of its pages' run records, `tokens` holding each page's count.

    Python's garbage collector is paused for the run (see `collector_paused`).

    With an available `sampler`, `telemetry` holds the run's energy, power and clock
    summary (and, with `keep_series`, its sample series for a timeline); else None. `host`
    holds what the host did meanwhile (`vlmprof.runtime.host_counters`); its `wall_ms` is
    the run's window on the host clock, from the first launch to the device finishing.
    """
    cuda = adapter.device.type == "cuda"
    timer = StageTimer(str(adapter.device))
    instruments = Instruments(timer, nvtx)
    handles = attach_stage_hooks(adapter.module, adapter.stage_modules(), instruments)
    peak: dict[str, int] = {}
    sampling = sampler is not None and sampler.available
    if sampling:
        sampler.start()
    try:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        eos = None if settings.ignore_eos else settings.eos_id
        # The device is idle here: the inputs' copy and the previous run or warm-up ended
        # in a synchronisation, so this host time is where the run's device work begins.
        with collector_paused():
            host_before = read_host()
            tokens = generate_batch(adapter, batch, settings.max_new_tokens, instruments, eos)
            timer.synchronize()
            host_after = read_host()  # the device work is done
        # Reading the marks back and the peak memory is bookkeeping after the run's window.
        times = timer.finish()
        if cuda:
            peak["run"] = int(torch.cuda.max_memory_allocated())
    finally:
        detach(handles)
        samples = sampler.stop() if sampling else []
    stage = timer.total_ms
    host = host_delta(host_before, host_after)
    telemetry = None
    if sampling:
        windows = _stage_windows(
            host_before.wall_s, host_after.wall_s, stage("prefill"), stage("decode")
        )
        telemetry = summarize_run(samples, windows) | {"overhead": sampler.overhead()}
        if keep_series:
            telemetry["series"] = series_dict(samples, windows)
    parts = [stage(name) for name in VISION_PARTS]
    return {
        "tokens": [int(page.numel()) for page in tokens],
        "prefill_ms": stage("prefill"),
        "decode_ms": stage("decode"),
        "ttft_ms": stage("ttft"),
        **{record_field(name): ms for name, ms in zip(VISION_PARTS, parts, strict=True)},
        "vision_ms": float(sum(v for v in parts if v is not None)) if any(parts) else None,
        "decode_step_ms": [round(ms, 4) for ms in times.get("decode_step", [])],
        "peak_mem_bytes": peak,
        "telemetry": telemetry,
        "host": host,
        # The run on the host clock (time.perf_counter), from the first launch to the
        # device finishing: where a batch timeline places the GPU side.
        "run_span_s": [host_before.wall_s, host_after.wall_s],
    }


def warm_up(
    adapter: ModelAdapter,
    pages: Sequence[Image.Image],
    rounds: int,
    max_new_tokens: int,
    batch_size: int = 1,
    preprocess: str = "cpu",
) -> None:
    """Run untimed generations of `batch_size` pages (made into inputs where `preprocess`
    says) so one-off costs (allocator, kernels, caches, graphs of that batch size) stay out."""
    nvtx = NvtxRanges(enabled=False)
    for round_index in range(rounds):
        batch = [
            page_inputs(adapter, pages[(round_index + row) % len(pages)], preprocess).to(
                adapter.device, adapter.dtype
            )
            for row in range(batch_size)
        ]
        generate_batch(adapter, batch, max_new_tokens, Instruments(None, nvtx))
    if adapter.device.type == "cuda":
        torch.cuda.synchronize()


def reference_outputs(
    adapter: ModelAdapter,
    inputs_cpu: ModelInputs,
    settings: ProfileSettings,
    against: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """One untimed generation of a page that keeps what the correctness gate compares."""
    return batch_reference_outputs(
        adapter, [inputs_cpu], settings, None if against is None else [against]
    )[0]


def batch_reference_outputs(
    adapter: ModelAdapter,
    batch_cpu: Sequence[ModelInputs],
    settings: ProfileSettings,
    against: Sequence[Mapping[str, torch.Tensor]] | None = None,
) -> list[dict[str, torch.Tensor]]:
    """One untimed generation of a batch that keeps, per page, what the correctness gate
    compares (so a batched variant is judged page by page against the lone baseline).

    With `against` (the baseline's saved outputs of these pages) the generation is
    teacher-forced on the baseline's tokens and every step's probe keeps the baseline's
    leading ids, so the gate compares both runs' logits at every step of one sequence.

    It doubles as the batch's warm-up (`warmup_per_image`): the first run of a new input
    shape pays one-off costs (allocator growth, kernel selection), on an H100 up to 2.5x
    the later repeats.
    """
    batch = [inputs.to(adapter.device, adapter.dtype) for inputs in batch_cpu]
    leading = [None] * len(batch) if against is None else [ref["top_indices"] for ref in against]
    captures = [GenerationCapture(leading=rows) for rows in leading]
    forced = None if against is None else [ref["tokens"] for ref in against]
    eos = None if settings.ignore_eos else settings.eos_id
    instruments = Instruments(None, NvtxRanges(enabled=False))
    tokens = generate_batch(
        adapter, batch, settings.max_new_tokens, instruments, eos, captures, forced
    )
    return [capture.to_dict(page) for capture, page in zip(captures, tokens, strict=True)]


def free_memory(device: torch.device) -> None:
    """Drop cached blocks after a failed run (or a model no longer used) so the next run
    starts clean.

    Call it after the `except` clause: while the exception is alive its traceback keeps the
    failed run's tensors (pytorch/pytorch#18853).
    """
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def telemetry_sampler(placement: Placement, settings: ProfileSettings) -> TelemetrySampler:
    """The shard's sampler of its GPU: unavailable (with its reason) on a CPU run or when
    disabled."""
    if not settings.telemetry:
        return TelemetrySampler(None, off_reason="switched off (telemetry.enabled: false)")
    return TelemetrySampler(
        nvml_device(placement) if placement.on_gpu else None,
        settings.telemetry_interval_ms,
        settings.telemetry_counter_interval_ms,
    )


def check_some_ok(records: Sequence[RunRecord], label: str) -> None:
    """Raise a ShardFailedError naming `label` and the first error when no record is ok.

    A shard without pages (more shards than pages) has no records and passes, and so does
    one whose every run ran out of memory: the records say the batch does not fit, which
    is what a batch-size sweep measures.
    """
    if not records or any(record.status == "ok" for record in records):
        return
    if all(did_not_fit(record.error) for record in records):
        log.warning("%s: every run ran out of memory; its records say so", label)
        return
    first = records[0]
    pages = len({record.image_id for record in records})
    raise ShardFailedError(
        f"{label}: no run succeeded ({pages} pages, {len(records)} runs); "
        f"first error, page {first.image_id}: {first.error}"
    )


def _facts_of_repeat(facts: dict[str, object], repeat: int) -> dict[str, object]:
    """A page's facts for one repeat's record: loading, preprocessing (and the shard's
    warm-up) happen once per page, so only repeat 0 keeps them."""
    return facts if repeat == 0 else {**facts, **ONCE_PER_PAGE}


@dataclass
class _Page:
    """A readable page of a batch: what its records share, its inputs, its image."""

    common: dict[str, object]
    facts: dict[str, object]
    inputs: ModelInputs
    image: Image.Image


def profile_images(
    adapter: ModelAdapter,
    placement: Placement,
    images: Sequence[tuple[str, Path]],
    settings: ProfileSettings,
    out_path: Path,
    outputs_path: Path | None = None,
    progress_label: str | None = None,
    page_facts: Callable[[ModelAdapter, ModelInputs], dict[str, object]] | None = None,
    against: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
) -> list[RunRecord]:
    """Profile `images` ((image_id, path) pairs) on `adapter`, built at `placement` (which
    every record keeps), and write their records to `out_path`.

    Pages run `settings.batch_size` at a time, loaded by `settings.workers` processes and
    preprocessed where `settings.preprocess` says: each page keeps its own record, with its
    batch's stage times (what the page waited) and the batch's size and index. With
    `outputs_path`, each page's untimed reference generation (tokens, first-step logits,
    per-step top-k) is saved there for the correctness gate, keyed by image_id. Progress
    (page, repeat, elapsed and remaining time) goes to standard error between runs, under
    `progress_label` (default "profile shard <shard>"). `page_facts` adds what it finds in an
    untimed run of each page (its counted work, say) to every record of the page. With
    `against` (the baseline's saved outputs by image_id) the reference generation is fed the
    baseline's tokens, for the gate (a batch with a page the baseline lacks runs freely).

    When no run succeeded, the records are still written, then a ShardFailedError names the
    first page's error (unless every run ran out of memory: a batch too large to fit is a
    finding, and the run goes on).
    """
    nvtx = NvtxRanges(enabled=settings.nvtx)
    outputs: dict[str, dict[str, torch.Tensor]] = {}
    base = {"device": placement.device, "dtype": placement.dtype, "placement": placement}
    warm_pages = [Image.new("RGB", WARMUP_PAGE_SIZE, "white")] if settings.warmup_synthetic else []
    records: list[RunRecord] = []
    series_kept = False
    label = progress_label or f"profile shard {settings.shard}"
    batch_size = settings.batch_size
    with atomic_open(out_path) as handle, telemetry_sampler(placement, settings) as sampler:

        def emit(record: RunRecord) -> None:
            records.append(record)
            handle.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
            handle.flush()

        def error_record(
            common: dict[str, object], repeat: int, facts: dict[str, object], reason: str
        ) -> RunRecord:
            once = _facts_of_repeat(facts, repeat)
            return RunRecord(**common, repeat=repeat, status="error", error=reason, **once, **base)

        def emit_errors(common: dict[str, object], facts: dict[str, object], reason: str) -> None:
            for repeat in range(settings.repeats):
                emit(error_record(common, repeat, facts, reason))

        warmed = False
        progress = Progress(label, len(images) * settings.repeats)
        source = loaded_pages(
            adapter, images, settings.max_pixels, settings.workers, settings.preprocess, batch_size
        )
        for first in range(0, len(images), batch_size):
            pages: list[_Page] = []
            for index, loaded in enumerate(islice(source, batch_size), first):
                common = {
                    "run_id": settings.run_id,
                    "image_id": loaded.image_id,
                    "shard": settings.shard,
                }
                if loaded.error is not None:
                    log.warning(
                        "image %s (%s) skipped: %s", loaded.image_id, loaded.path, loaded.error
                    )
                    emit_errors(common, {}, loaded.error)
                    page_of = f"page {index + 1}/{len(images)} ({loaded.image_id})"
                    progress.step(f"{page_of} unreadable", settings.repeats)
                    continue
                assert loaded.inputs is not None and loaded.image is not None
                facts = {
                    "mode": loaded.inputs.mode,
                    "n_crops": loaded.inputs.n_crops,
                    "image_tokens": loaded.inputs.image_tokens,
                    "prefill_len": loaded.inputs.prefill_len,
                    "load_ms": loaded.load_ms,
                    "preprocess_ms": loaded.preprocess_ms,
                    "input_wait_ms": loaded.input_wait_ms,
                    "host_span_s": loaded.host_span_s,
                    "wait_span_s": loaded.wait_span_s,
                }
                pages.append(_Page(common, facts, loaded.inputs, loaded.image))
            if not pages:
                continue
            batch = {"batch_size": len(pages), "batch": first // batch_size}
            for page in pages:
                page.common.update(batch)
            ids = [str(page.common["image_id"]) for page in pages]
            pages_of = f"page {first + 1}/{len(images)} ({ids[0]})"
            if len(pages) > 1:
                pages_of = f"pages {first + 1}-{first + len(pages)}/{len(images)}"
            batch_cpu = [page.inputs for page in pages]
            forced_by = None
            if against is not None and all(image in against for image in ids):
                forced_by = [against[image] for image in ids]
            failure = None
            try:
                if not warmed:
                    start = time.perf_counter()
                    warm_up(
                        adapter,
                        warm_pages or [page.image for page in pages],
                        settings.warmup_rounds,
                        settings.max_new_tokens,
                        len(pages),
                        settings.preprocess,
                    )
                    pages[0].facts["warmup_ms"] = _elapsed_ms(start)
                    warmed = True
                if settings.warmup_per_image:
                    references = batch_reference_outputs(adapter, batch_cpu, settings, forced_by)
                    outputs.update(zip(ids, references, strict=True))
                if page_facts is not None:
                    for page in pages:
                        placed = page.inputs.to(adapter.device, adapter.dtype)
                        page.facts.update(page_facts(adapter, placed))
            except (torch.OutOfMemoryError, RuntimeError) as error:
                failure = error_reason(error)
            if failure is not None:
                # The batch fails in its warm-up (out of memory, say): every repeat would too.
                free_memory(adapter.device)
                log.warning("%s failed in warm-up: %s", pages_of, failure)
                for page in pages:
                    emit_errors(page.common, page.facts, failure)
                progress.step(f"{pages_of} failed", settings.repeats * len(pages))
                continue
            for repeat in range(settings.repeats):
                failure = None
                try:
                    inputs = [item.to(adapter.device, adapter.dtype) for item in batch_cpu]
                    # One run keeps its sample series, for the report's timeline: the last
                    # repeat of the shard's first batch that runs, its warmest.
                    keep = not series_kept and repeat == settings.repeats - 1
                    timing = timed_run(adapter, inputs, settings, nvtx, sampler, keep)
                    series_kept = series_kept or (keep and timing["telemetry"] is not None)
                except (torch.OutOfMemoryError, RuntimeError) as error:
                    failure = error_reason(error)
                if failure is not None:
                    free_memory(adapter.device)
                for number, page in enumerate(pages):
                    if failure is None:
                        facts = _facts_of_repeat(page.facts, repeat)
                        timing_of_page = {**timing, "tokens": timing["tokens"][number]}
                        record = RunRecord(
                            **page.common, repeat=repeat, **facts, **timing_of_page, **base
                        )
                    else:
                        record = error_record(page.common, repeat, page.facts, failure)
                    emit(record)
                log.info(
                    "shard %d %s repeat %d/%d: %s",
                    settings.shard,
                    pages_of,
                    repeat + 1,
                    settings.repeats,
                    "error: " + str(record.error)
                    if record.status == "error"
                    else f"prefill {record.prefill_ms:.1f} ms, decode {record.decode_ms:.1f} ms",
                )
                progress.step(f"{pages_of} repeat {repeat + 1}/{settings.repeats}", len(pages))
            if outputs_path is not None and ids[0] not in outputs:
                # Without a per-image warm-up the reference run comes after the repeats,
                # so it cannot warm them.
                failure = None
                try:
                    references = batch_reference_outputs(adapter, batch_cpu, settings, forced_by)
                    outputs.update(zip(ids, references, strict=True))
                except (torch.OutOfMemoryError, RuntimeError) as error:
                    failure = error_reason(error)
                if failure is not None:
                    free_memory(adapter.device)
                    log.warning("%s: no reference output: %s", pages_of, failure)
        if outputs_path is not None:
            with atomic_open(outputs_path, "wb") as outputs_handle:
                torch.save(outputs, outputs_handle)
    check_some_ok(records, label)
    return records

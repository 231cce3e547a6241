"""One timed run of a batch of pages: the generation under the stage timer, NVTX and the
telemetry sampler, read back into the fields of its pages' run records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.placement import Placement
from vlmprof.runtime.collector import collector_paused
from vlmprof.runtime.generate import Generation, generate_batch
from vlmprof.runtime.host_counters import HostReading, host_delta, read_host
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvml import nvml_device
from vlmprof.runtime.nvml_sample import Sample
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.stage_timer import StageTimer
from vlmprof.runtime.telemetry import TelemetrySampler, series_dict, summarize_run
from vlmprof.stages import VISION_PARTS, record_field


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
    lengths: Sequence[int] | None = None,
) -> dict[str, object]:
    """One instrumented generation of a batch of pages (often one), each up to its length
    (`lengths`; default every page `settings.max_new_tokens`); returns the timing fields of
    its pages' run records, `tokens` holding each page's count.

    Python's garbage collector is paused for the run (see `collector_paused`).

    With an available `sampler`, `telemetry` holds the run's energy, power and clock
    summary (and, with `keep_series`, its sample series for a timeline); else None. `host`
    holds what the host did meanwhile (`vlmprof.runtime.host_counters`); its `wall_ms` is
    the run's window on the host clock, from the first launch to the device finishing.
    """
    lengths = [settings.max_new_tokens] * len(batch) if lengths is None else lengths
    timer = StageTimer(str(adapter.device))
    instruments = Instruments(timer, nvtx)
    handles = attach_stage_hooks(adapter.module, adapter.stage_modules(), instruments)
    sampling = sampler is not None and sampler.available
    if sampling:
        sampler.start()
    try:
        timed = _generate(adapter, batch, lengths, settings, timer, instruments)
    finally:
        detach(handles)
        samples = sampler.stop() if sampling else []
    telemetry = None
    if sampling:
        telemetry = _telemetry(sampler, samples, timed, keep_series)
    return _timing_fields(timed, telemetry)


@dataclass
class _Timed:
    """A timed generation: what it made, its stage times (ms, by label), the host's readings
    at its ends and the peak memory it took (on a GPU)."""

    run: Generation
    timer: StageTimer
    times: dict[str, list[float]]
    before: HostReading
    after: HostReading
    peak: dict[str, int]


def _generate(
    adapter: ModelAdapter,
    batch: Sequence[ModelInputs],
    lengths: Sequence[int],
    settings: ProfileSettings,
    timer: StageTimer,
    instruments: Instruments,
) -> _Timed:
    """The generation itself, under `instruments` (whose timer is `timer`)."""
    cuda = adapter.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    eos = None if settings.ignore_eos else settings.eos_id
    # The device is idle here: the inputs' copy and the previous run or warm-up ended in a
    # synchronisation, so this host time is where the run's device work begins.
    with collector_paused():
        before = read_host()
        run = generate_batch(adapter, batch, lengths, instruments, eos)
        timer.synchronize()
        after = read_host()  # the device work is done
    # Reading the marks back and the peak memory is bookkeeping after the run's window.
    times = timer.finish()
    peak = {"run": int(torch.cuda.max_memory_allocated())} if cuda else {}
    return _Timed(run, timer, times, before, after, peak)


def _telemetry(
    sampler: TelemetrySampler, samples: list[Sample], timed: _Timed, keep_series: bool
) -> dict[str, object]:
    """The run's telemetry summary over its stage windows (and, with `keep_series`, its
    sample series)."""
    stage = timed.timer.total_ms
    start, end = timed.before.wall_s, timed.after.wall_s
    windows = _stage_windows(start, end, stage("prefill"), stage("decode"))
    telemetry = summarize_run(samples, windows) | {"overhead": sampler.overhead()}
    if keep_series:
        telemetry["series"] = series_dict(samples, windows)
    return telemetry


def _timing_fields(timed: _Timed, telemetry: dict[str, object] | None) -> dict[str, object]:
    """The run's fields of its pages' records: each page's tokens, the batch's decode
    slot-steps (and the idle ones), its stage times, memory, telemetry and host side."""
    stage = timed.timer.total_ms
    parts = [stage(name) for name in VISION_PARTS]
    return {
        "tokens": [int(page.numel()) for page in timed.run.tokens],
        "decode_slot_steps": timed.run.slot_steps,
        "idle_slot_steps": timed.run.idle_slot_steps,
        "prefill_ms": stage("prefill"),
        "decode_ms": stage("decode"),
        "ttft_ms": stage("ttft"),
        **{record_field(name): ms for name, ms in zip(VISION_PARTS, parts, strict=True)},
        "vision_ms": float(sum(v for v in parts if v is not None)) if any(parts) else None,
        "decode_step_ms": [round(ms, 4) for ms in timed.times.get("decode_step", [])],
        "peak_mem_bytes": timed.peak,
        "telemetry": telemetry,
        "host": host_delta(timed.before, timed.after),
        # The run on the host clock (time.perf_counter), from the first launch to the
        # device finishing: where a batch timeline places the GPU side.
        "run_span_s": [timed.before.wall_s, timed.after.wall_s],
    }

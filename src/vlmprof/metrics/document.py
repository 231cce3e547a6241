"""metrics.json as typed classes: one dataclass per section, read with `MetricsDocument.read`
or `from_dict` and written with `write` or `to_dict`, so every reader uses attributes.

Documents of every age read: a section or key added later is None (or empty) in an older
one, a key since retired is left out, and a value of the wrong kind stops the reader with
its key path (`vlmprof.typed_json`). Each field's `help` is its description, and
docs/metrics-schema.md is generated from them:
`python -m vlmprof.metrics.document schema > docs/metrics-schema.md`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmprof.atomic import write_json_atomic
from vlmprof.flops.work import WORK_DESCRIPTIONS, WorkSource
from vlmprof.metrics.roofline import PEAK_COLUMNS
from vlmprof.typed_json import DocumentError, described, read_as, schema_markdown, to_plain

SCHEMA_COMMAND = "python -m vlmprof.metrics.document schema > docs/metrics-schema.md"
# Keys older documents hold that no class reads (`*`: any stage), each with what replaced it;
# reading such a document leaves them out.
RETIRED: dict[str, str] = {
    "aggregates.tokens_per_s": "a mean of per-record rates; decode_tokens_per_s is a total "
    "over a total",
    "aggregates.pages_per_s": "pages/s over prefill and decode; now pages_per_s_gpu_side (in "
    "the oldest documents a summary of per-record rates)",
    "aggregates.pages_per_s_end_to_end": "(in documents without "
    "output_tokens_per_s_end_to_end) each batch's prefill and decode (event times) plus its "
    "waits, shards' times summed; now over the run's wall time on the host's clock, devices "
    "at once",
    "telemetry.mean_power_w": "(as an object) a summary of per-run means; now energy over time",
    "mbu.decode_roofline.bytes_per_token": "one byte figure, counted before attention was "
    "counted as the kernels compute it; now bytes_necessary_per_token and "
    "bytes_as_implemented_per_token",
    "mbu.per_stage.*.bytes_per_run": "likewise; now bytes_necessary_per_run and "
    "bytes_as_implemented_per_run",
    "mbu.per_stage.*.bytes_total": "likewise; now bytes_necessary_total and "
    "bytes_as_implemented_total",
    "roofline.per_stage.*.bytes_per_run": "likewise; now bytes_necessary_per_run and "
    "bytes_as_implemented_per_run",
    "roofline.per_stage.*.bytes_total": "likewise; now bytes_necessary_total and "
    "bytes_as_implemented_total",
    "roofline.per_stage.*.intensity": "likewise; now intensity_necessary and "
    "intensity_as_implemented",
    "cost.pages_per_gpu_day": "(in documents without cost.end_to_end_ms_per_page) from GPU "
    "time alone, the host assumed hidden; now from the measured end-to-end rate",
    "cost.gpu_cost_per_1000_pages": "(in documents without cost.end_to_end_ms_per_page) likewise",
    "cost.pages_per_gpu_day_serial": "GPU and host time in series; pages_per_gpu_day is now "
    "end to end, measured",
    "cost.serial_ms_per_page": "GPU and host time of a page in series; now "
    "end_to_end_ms_per_page, measured",
    "cost.latency_ms_per_page": "a batch's GPU time plus one page's host time; now "
    "page_latency_ms (p50, p90 across pages), with the batch's wait for its pages",
    "cost.output_tokens_per_s": "over GPU time alone; now output_tokens_per_s_end_to_end and "
    "output_tokens_per_s_gpu_side",
}


class ByPeak:
    """Figures held once per peak column (`datasheet`, `calibrated`), also read by name."""

    def at(self, column: str) -> Any:
        """The figure of peak column `column`; a KeyError for any other name."""
        if column not in PEAK_COLUMNS:
            raise KeyError(f"{column!r}: not a peak column; one of {', '.join(PEAK_COLUMNS)}")
        return getattr(self, column)


# --- shared figures ----------------------------------------------------------------------


@dataclass
class Summary:
    """Statistics of one set of measurements (`vlmprof.metrics.stats.summarize`): sample
    standard deviation, linear-interpolated percentiles; every statistic null when n is 0."""

    n: int | None = described("how many values (None, NaN and infinities left out)")
    mean: float | None = described("their mean")
    std: float | None = described("their sample standard deviation (0 for one value)")
    cv: float | None = described("std / mean; null when the mean is 0")
    p50: float | None = described("median")
    p90: float | None = described("90th percentile")
    p99: float | None = described("99th percentile")
    min: float | None = described("smallest value")
    max: float | None = described("largest value")


# --- aggregates, counts, failures, repeatability ------------------------------------------


@dataclass
class ShardWall:
    """One shard end to end on the host's clock (`vlmprof.metrics.end_to_end`)."""

    shard: int | None = described("the shard")
    device: str | None = described("the device it ran on: its GPU's UUID, else its name")
    pages: int | None = described("pages of its batches' first repeats that ran")
    tokens: int | None = described("tokens they generated")
    wall_s: float | None = described(
        "from its first page read to its last token, its batches' waits and first runs one "
        "after another, the measurement's own work left out (s)"
    )
    elapsed_s: float | None = described(
        "from its first page read to its last token with the measurement's own work: "
        "warm-up, the gate's reference generations, the work count, the later repeats (s)"
    )


@dataclass
class EndToEnd:
    """The run end to end on the host's clock: what the end-to-end rates divide by."""

    pages: int | None = described("pages of the batches' first repeats that ran")
    tokens: int | None = described("tokens they generated")
    wall_s: float | None = described(
        "the run's wall time (s): its busiest device's, devices running at once and a "
        "device's shards one after another"
    )
    device_s: float | None = described(
        "every shard's wall time summed (s): device time, what a per-device rate divides by"
    )
    devices: int | None = described("devices the shards ran on")
    shards: list[ShardWall] = described("each shard's figures", factory=list)


@dataclass
class Aggregates:
    """Timing statistics over the ok records, and the run's rates as totals over totals:
    end to end (the headline), GPU side and decode only (`rates` says what each counts)."""

    stage_ms: dict[str, Summary] = described(
        "per stage (`vlmprof.stages`) measured by at least one ok record: its time (ms) over "
        "the ok records; decode_per_token pools every decode step",
        factory=dict,
    )
    prefill_ms: Summary = described("prefill time (ms) of the ok records", factory=Summary)
    decode_ms: Summary = described("decode time (ms) of the ok records", factory=Summary)
    tokens: Summary = described("tokens generated per ok record", factory=Summary)
    output_tokens_per_s_end_to_end: float | None = described(
        "output tokens/s end to end, the host in the loop: tokens over the run's wall time "
        "(`end_to_end`); null for records from before their host-clock spans were kept"
    )
    pages_per_s_end_to_end: float | None = described("pages/s end to end, over the same wall time")
    output_tokens_per_s_gpu_side: float | None = described(
        "output tokens/s on the GPU side: every token over prefill and decode time"
    )
    pages_per_s_gpu_side: float | None = described(
        "pages/s on the GPU side, over prefill and decode time"
    )
    decode_tokens_per_s: float | None = described(
        "decode tokens/s, decode only: tokens generated in decode over decode time"
    )
    rates: dict[str, str] = described("what each rate above counts, by its key", factory=dict)
    end_to_end: EndToEnd | None = described(
        "the wall time the end-to-end rates divide by, per shard and for the run"
    )
    batch_size: Summary | None = described("pages generated together, over the ok records")
    input_wait_ms: Summary | None = described(
        "how long the timing pass waited for a page's inputs (ms)"
    )
    warmup_ms: Summary | None = described(
        "each shard's warm-up (ms): compilation, graph capture and warm-up generations"
    )

    @staticmethod
    def upgrade(data: Mapping[str, Any]) -> Mapping[str, Any]:
        """Documents from before the end-to-end rates were taken on the host's clock held a
        `pages_per_s_end_to_end` of event times and summed waits, summed over shards: another
        figure, left out."""
        if "output_tokens_per_s_end_to_end" in data:
            return data
        return {key: value for key, value in data.items() if key != "pages_per_s_end_to_end"}

    def mean_ms(self, stage: str) -> float | None:
        """Mean time (ms) of `stage` over the ok records; None where none timed it."""
        stats = self.stage_ms.get(stage)
        return None if stats is None else stats.mean


@dataclass
class DecodeSlots:
    """Static batching's cost (`vlmprof.metrics.decode_slots`): a batch decodes until its
    longest page ends, so the slots of pages that ended earlier run idle."""

    output_length: str | None = described("how the pages' lengths were set (output_length)")
    target_tokens: Summary | None = described("the pages' lengths (tokens), over the ok records")
    batch_runs: int | None = described("batch runs counted (each batch's repeat once)")
    slot_steps: int | None = described("decode slot-steps: each batch run's pages x decode steps")
    idle_slot_steps: int | None = described(
        "of those, the steps a page's slot ran after the page had ended"
    )
    idle_share: float | None = described(
        "idle_slot_steps / slot_steps: the share of decode slot-steps spent on finished pages"
    )
    useful_tokens_per_s: float | None = described(
        "useful decode tokens (slot_steps - idle_slot_steps) over the batch runs' decode time"
    )
    slot_steps_per_s: float | None = described(
        "every decode slot-step over the same time: the rate were no page to end early"
    )
    definition: str | None = described("what is counted")


@dataclass
class Counts:
    """How many records, pages and repeats the run has, and how many failed."""

    records: int | None = described("run records (pages x repeats, ok or not)")
    ok: int | None = described("records whose status is ok")
    error: int | None = described("records that failed")
    images: int | None = described("pages profiled")
    images_failed: int | None = described("pages with at least one failed record")
    repeats: int | None = described("repeats per page")


@dataclass
class Failure:
    """One failed record."""

    image_id: str | None = described("the page")
    repeat: int | None = described("the repeat that failed")
    error: str | None = described("why, in one line")


@dataclass
class StageRepeatability:
    """How far repeats of one page differ in one stage, over the pages with two or more ok
    repeats."""

    max_spread: float | None = described("largest (max - min) / mean of a page's repeats")
    mean_spread: float | None = described("mean of the pages' spreads")
    max_cv: float | None = described("largest CV of a page's repeats")
    mean_cv: float | None = described("mean of the pages' CVs")
    max_deviation: float | None = described(
        "largest deviation of a repeat from its page's mean, relative to that mean"
    )
    worst_image: str | None = described("the page with that deviation")
    images: int | None = described("pages judged")
    passed: bool | None = described("whether max_deviation is within the tolerance", key="pass")


@dataclass
class Repeatability:
    """Whether repeats of the same page agree within the configured tolerance, per stage."""

    tolerance: float | None = described(
        "relative deviation allowed (metrics.repeatability_tolerance)"
    )
    stages: dict[str, StageRepeatability] = described("per stage", factory=dict)
    failing_stages: list[str] = described("stages beyond the tolerance", factory=list)
    passed: bool | None = described(
        "every stage within the tolerance; null when no page had two ok repeats", key="pass"
    )
    reason: str | None = described("why nothing was judged, where nothing was")


# --- utilisation and the roofline ---------------------------------------------------------


@dataclass
class MfuPeak:
    """A compute peak MFU divides by, and where it came from."""

    tflops: float | None = described("the peak (TFLOP/s)")
    label: str | None = described("where it came from")
    reason: str | None = described("why it is absent, where it is")


@dataclass
class MfuPeaks(ByPeak):
    """The two compute peaks, by column."""

    datasheet: MfuPeak = described(
        "the datasheet's (or the configured override's)", factory=MfuPeak
    )
    calibrated: MfuPeak = described("the one measured on this machine", factory=MfuPeak)


@dataclass
class MfuStage(ByPeak):
    """MFU of one stage: its FLOPs summed over the ok records that timed it, over their time
    summed, as a fraction of each peak."""

    datasheet: float | None = described("MFU against the datasheet peak (a fraction)")
    calibrated: float | None = described("MFU against the calibrated peak")
    datasheet_mean_of_records: float | None = described("mean of per-record MFUs, datasheet")
    calibrated_mean_of_records: float | None = described("mean of per-record MFUs, calibrated")
    flops_per_run: float | None = described("FLOPs per record")
    flops_total: float | None = described("FLOPs summed over the records")
    achieved_tflops: float | None = described("summed FLOPs over summed time (TFLOP/s)")
    time_ms_total: float | None = described("the records' time summed (ms)")
    records: int | None = described("records that timed the stage")
    reason: str | None = described("why there is no figure, where there is none")


@dataclass
class Mfu:
    """Model FLOP utilisation per stage, for the page (`model_level`: prefill + decode FLOPs
    over their time) and for decode under each context-length mode."""

    context_len_mode: str | None = described(
        "how decode FLOPs count the context: auto, max or fixed"
    )
    context_len_fixed: int | None = described("the context of the fixed mode")
    headline: str | None = described("how the aggregate figures are computed")
    peaks: MfuPeaks = described("what each column divides by", factory=MfuPeaks)
    model_level: MfuStage | None = described("the page: prefill + decode")
    per_stage: dict[str, MfuStage] = described(
        "vision, llm_prefill, prefill and decode", factory=dict
    )
    by_context_mode: dict[str, MfuStage] = described(
        "decode under each context-length mode its FLOPs can be given in", factory=dict
    )
    batching: str | None = described("how a page of a batch counts its share (batched runs)")
    reason: str | None = described("why there are no figures, where there are none")


@dataclass
class MbuPeak:
    """A bandwidth peak MBU divides by, and where it came from."""

    tbps: float | None = described("the peak (TB/s)")
    label: str | None = described("where it came from")
    reason: str | None = described("why it is absent, where it is")


@dataclass
class MbuPeaks(ByPeak):
    """The two bandwidth peaks, by column."""

    datasheet: MbuPeak = described(
        "the datasheet's (or the configured override's)", factory=MbuPeak
    )
    calibrated: MbuPeak = described("the one measured on this machine", factory=MbuPeak)


@dataclass
class MbuStage(ByPeak):
    """MBU of one stage: its necessary bytes summed over the ok records that timed it, over
    their time summed, as a fraction of each peak; its bytes as implemented beside them."""

    datasheet: float | None = described("MBU against the datasheet peak (a fraction)")
    calibrated: float | None = described("MBU against the calibrated peak")
    datasheet_mean_of_records: float | None = described("mean of per-record MBUs, datasheet")
    calibrated_mean_of_records: float | None = described("mean of per-record MBUs, calibrated")
    bytes_necessary_per_run: float | None = described("necessary bytes per record")
    bytes_necessary_total: float | None = described("necessary bytes summed over the records")
    bytes_as_implemented_per_run: float | None = described(
        "bytes as implemented per record; null where a record carries no such count"
    )
    bytes_as_implemented_total: float | None = described("bytes as implemented, summed")
    achieved_tbps: float | None = described("summed necessary bytes over summed time (TB/s)")
    time_ms_total: float | None = described("the records' time summed (ms)")
    records: int | None = described("records that timed the stage")
    reason: str | None = described("why there is no figure, where there is none")


@dataclass
class ByteFigures:
    """What each of a stage's two byte figures counts."""

    necessary: str | None = described("the necessary bytes, which MBU and the bound divide by")
    as_implemented: str | None = described("the bytes as implemented, every op's traffic")


@dataclass
class DecodeStep:
    """One decode step against bandwidth: the bytes it moves and the time they allow."""

    bytes_necessary_per_token: float | None = described("necessary bytes of one decode step")
    bytes_as_implemented_per_token: float | None = described(
        "bytes as implemented of one decode step"
    )
    ms_per_token_measured: float | None = described("measured time per decode step (ms)")
    ms_per_token_at_datasheet_bw: float | None = described(
        "the necessary bytes' time at the datasheet bandwidth (ms)"
    )
    ms_per_token_at_calibrated_bw: float | None = described(
        "the necessary bytes' time at the calibrated bandwidth (ms)"
    )


@dataclass
class Mbu:
    """Memory bandwidth utilisation of prefill and decode, and a decode step against the
    bandwidth."""

    context_len_mode: str | None = described("how decode work counts the context")
    headline: str | None = described("how the aggregate figures are computed")
    bytes: ByteFigures | None = described("what each byte figure counts")
    peaks: MbuPeaks = described("what each column divides by", factory=MbuPeaks)
    per_stage: dict[str, MbuStage] = described("prefill and decode", factory=dict)
    decode_roofline: DecodeStep | None = described("one decode step against bandwidth")
    batching: str | None = described("how a page of a batch counts its share (batched runs)")
    reason: str | None = described("why there are no figures, where there are none")


@dataclass
class PageBound:
    """A bound against one peak: the time the work needs there and the roof that sets it."""

    bound: str | None = described(
        'the roof: "compute", "memory", "compute (bytes not counted)", or for the page '
        "prefill's and decode's"
    )
    bound_ms: float | None = described("the time the work needs at the peak (ms)")
    distance: float | None = described("measured time over bound_ms (= 1 / max(MFU, MBU))")
    bytes_counted: bool | None = described("whether the bound counts bytes, not compute alone")


@dataclass
class StageBound(PageBound):
    """A stage's bound against one peak, with the rate that bound allows."""

    attainable_tflops: float | None = described("the rate the bound allows (TFLOP/s)")


@dataclass
class RooflineStage(ByPeak):
    """One stage on the roofline over the ok records that timed it: its work, both byte
    figures, intensity, achieved rate and its bound against each peak."""

    flops_total: float | None = described("FLOPs summed over the records")
    bytes_necessary_total: float | None = described("necessary bytes summed")
    bytes_as_implemented_total: float | None = described(
        "bytes as implemented summed; null where a record carries no such count"
    )
    time_ms_total: float | None = described("time summed (ms)")
    records: int | None = described("records that timed the stage")
    flops_per_run: float | None = described("FLOPs per record")
    bytes_necessary_per_run: float | None = described("necessary bytes per record")
    bytes_as_implemented_per_run: float | None = described("bytes as implemented per record")
    intensity_necessary: float | None = described("FLOPs per necessary byte")
    intensity_as_implemented: float | None = described("FLOPs per byte as implemented")
    achieved_tflops: float | None = described("summed FLOPs over summed time (TFLOP/s)")
    datasheet: StageBound | None = described("against the datasheet peak; null without it")
    calibrated: StageBound | None = described("against the calibrated peak; null without it")


@dataclass
class PageRoofline(ByPeak):
    """A page, prefill + decode: its bound at each peak is prefill's plus decode's."""

    time_ms_total: float | None = described("prefill + decode time summed (ms)")
    records: int | None = described("records that timed both")
    datasheet: PageBound | None = described("against the datasheet peak; null without it")
    calibrated: PageBound | None = described("against the calibrated peak; null without it")


@dataclass
class Roofline:
    """Each stage's roofline bound (`vlmprof.metrics.roofline`), and the page's."""

    bytes: ByteFigures | None = described("what each byte figure counts")
    per_stage: dict[str, RooflineStage] = described(
        "the vision parts, vision, llm_prefill, prefill and decode", factory=dict
    )
    model_level: PageRoofline | None = described("the page: prefill + decode")
    reason: str | None = described("why there are no figures, where there are none")


# --- peaks, static compute, work ----------------------------------------------------------


@dataclass
class DatasheetPeak:
    """The datasheet's peaks of the device at the run's dtype."""

    tflops: float | None = described("compute peak (TFLOP/s), dense")
    tbps: float | None = described("bandwidth peak (TB/s)")
    source: str | None = described("the datasheet entry")
    reason: str | None = described("why there is none (a CPU, a GPU not in the table)")


@dataclass
class OverridePeak:
    """Peaks set in the configuration or the environment, replacing the datasheet's."""

    tflops: float | None = described("compute peak (TFLOP/s)")
    tbps: float | None = described("bandwidth peak (TB/s)")
    source: str | None = described("the config key or environment variable that set it")


@dataclass
class ReferencePeak:
    """A peak the utilisation figures divide by, and where it came from."""

    tflops: float | None = described("compute peak (TFLOP/s)")
    tbps: float | None = described("bandwidth peak (TB/s)")
    label: str | None = described("where it came from")
    reason: str | None = described("why a figure is absent, where one is")


@dataclass
class CalibratedPeak(ReferencePeak):
    """The peaks measured on this machine by the calibration micro-benchmarks."""

    method: str | None = described("how they were measured")
    origin: str | None = described("measured for this run, or cached (and how long ago)")


@dataclass
class Peaks:
    """Every peak the metrics divide by (`vlmprof.metrics.peaks.resolve_peaks`)."""

    device_name: str | None = described("the device the peaks were looked up for")
    dtype: str | None = described("the dtype the run computed in")
    datasheet: DatasheetPeak = described("the datasheet's", factory=DatasheetPeak)
    calibrated: CalibratedPeak = described("measured on this machine", factory=CalibratedPeak)
    reference: ReferencePeak = described(
        'what the "datasheet" columns divide by: the override where set, else the datasheet',
        factory=ReferencePeak,
    )
    override: OverridePeak | None = described("peaks set by the config or the environment")

    def by_column(self) -> dict[str, ReferencePeak]:
        """The peak each utilisation column divides by, by column name."""
        return {"datasheet": self.reference, "calibrated": self.calibrated}


@dataclass
class Static:
    """The model's parameters and FLOPs per view (static/static_compute.json)."""

    params: dict[str, int] = described("parameters by part of the model", factory=dict)
    per_view_flops: dict[str, dict[str, float]] = described(
        "FLOPs of each vision stage by view size (empty for a model without formulas)",
        factory=dict,
    )
    conventions: list[str] = described("how FLOPs and bytes are counted", factory=list)


@dataclass
class Work:
    """Where the run's FLOPs and bytes come from, named: readers branch on `source`."""

    source: WorkSource = described(
        "formulas: analytic, at each record's shapes; counted: over each page's own run",
        required=True,
    )
    description: str | None = described("what the source means")

    @classmethod
    def of(cls, source: WorkSource) -> Work:
        """The work section of `source`, with its description."""
        return cls(source, WORK_DESCRIPTIONS[source])


# --- telemetry, host, environment, inputs -------------------------------------------------


@dataclass
class FlaggedRun:
    """A run the telemetry guard distrusts."""

    image_id: str | None = described("its page")
    repeat: int | None = described("its repeat")
    shard: int | None = described("its shard")
    reasons: list[str] = described("why: sagging clocks, throttling", factory=list)


@dataclass
class TelemetrySeries:
    """One run's samples, for a timeline of its clock and power."""

    image_id: str | None = described("the run's page")
    repeat: int | None = described("its repeat")
    shard: int | None = described("its shard")
    prefill_ms: float | None = described("its prefill (ms)")
    decode_ms: float | None = described("its decode (ms)")
    columns: dict[str, list[float | None]] = described(
        "the samples by field: t_s (from the run's start), sm_clock_mhz, mem_clock_mhz, "
        "power_w, temperature_c, gpu_util_pct",
        factory=dict,
    )
    stage_windows_s: dict[str, list[float]] = described(
        "each stage's [start, end] (s from the run's start): prefill, decode, run", factory=dict
    )


@dataclass
class Telemetry:
    """GPU energy, power and clocks over the timed runs (`vlmprof.metrics.telemetry`); only
    `available` and `reason` where no record carries telemetry."""

    available: bool | None = described("whether any ok record carries telemetry")
    reason: str | None = described("why not, where not")
    runs: int | None = described("ok records with telemetry")
    energy_j: dict[str, Summary] = described(
        "energy (J) per stage of a run (prefill, decode, run)", factory=dict
    )
    joules_per_page: float | None = described("mean energy of a run (J)")
    joules_per_output_token: float | None = described("energy over tokens, total over total (J)")
    mean_power_w: float | None = described("energy over time of every run (W)")
    peak_power_w: float | None = described("highest power sampled (W)")
    sm_clock_min_mhz: float | None = described("lowest SM clock sampled (MHz)")
    sm_clock_max_mhz: float | None = described("highest SM clock sampled (MHz)")
    peak_temperature_c: float | None = described("highest temperature sampled (C)")
    throttle_reasons_seen: list[str] = described("throttle reasons NVML reported", factory=list)
    clock_drop_fraction: float | None = described(
        "how far below the median SM clock flags a run (telemetry.clock_drop_fraction)"
    )
    flagged_runs: list[FlaggedRun] = described("runs to distrust", factory=list)
    sampler_read_mean_ms: float | None = described("mean time of one NVML read (ms)")
    energy_price_per_kwh: float | None = described("telemetry.energy_price_per_kwh")
    cost_per_page: float | None = described("energy cost of a page at that price")
    timeline: TelemetrySeries | None = described("one run's samples")

    @staticmethod
    def upgrade(data: Mapping[str, Any]) -> Mapping[str, Any]:
        """Documents from before power was energy over time held `mean_power_w` as a summary
        of per-run means: another figure, left out."""
        if isinstance(data.get("mean_power_w"), Mapping):
            return {key: value for key, value in data.items() if key != "mean_power_w"}
        return data


@dataclass
class Host:
    """What the host did during the timed runs (`vlmprof.metrics.host`)."""

    runs: int | None = described("ok records with host figures")
    busy_fraction_median: float | None = described("run thread's time on a CPU over the run")
    busy_fraction_min: float | None = described("its lowest")
    involuntary_switches_median: float | None = described("involuntary context switches a run")
    involuntary_switches_max: float | None = described("their most")
    steal_fraction_median: float | None = described("CPU steal over the run, per vCPU")
    steal_fraction_max: float | None = described("its highest")
    runs_held_off_cpu: int | None = described(
        "runs whose thread was on a CPU less than metrics.host.BUSY_FLOOR of the time"
    )
    runs_with_steal: int | None = described(
        "runs that lost more than metrics.host.STEAL_FLOOR of a vCPU to steal"
    )


@dataclass
class Pipeline:
    """The host's side of the run against the GPU's, and which binds it
    (`vlmprof.metrics.pipeline`)."""

    batches: int | None = described("batches whose first repeat kept the timing pass's wait")
    pages: int | None = described("their pages")
    workers: int | None = described("processes loading and preprocessing ahead (0: inline)")
    gpu_ms: float | None = described("the batches' prefill + decode, summed (ms)")
    input_wait_ms: float | None = described(
        "the time the timing pass waited for the batches' pages, summed (ms)"
    )
    host_busy_ms: float | None = described("the pages' load + preprocessing, summed (ms)")
    gpu_ms_per_batch: float | None = described("GPU time of a batch (ms)")
    input_wait_ms_per_batch: float | None = described("wait for a batch's pages (ms)")
    host_busy_ms_per_page: float | None = described("the host's work on a page (ms)")
    wait_share: float | None = described("input_wait_ms over gpu_ms + input_wait_ms")
    end_to_end_share: float | None = described(
        "gpu_ms over gpu_ms + input_wait_ms: the end-to-end rate over the GPU side's"
    )
    host_per_gpu: float | None = described(
        "host_busy_ms per worker (inline: all of it) over gpu_ms; above 1 the host cannot "
        "keep up with the GPU however far ahead it runs"
    )
    binding: str | None = described(
        "host (the GPU waited over host_bound_wait of the time end to end) or GPU"
    )
    host_bound_wait: float | None = described("the wait_share above which the host binds")
    method: str | None = described("how the figures are computed")
    reason: str | None = described("why there are no figures, where there are none")


@dataclass
class BatchMemory:
    """One batch's memory (`vlmprof.metrics.memory`)."""

    shard: int | None = described("its shard")
    batch: int | None = described("its index in the shard")
    pages: int | None = described("its pages")
    positions: int | None = described(
        "KV-cache positions of each page: the batch's longest prompt + max_new_tokens"
    )
    kv_cache_bytes: int | None = described(
        "its KV cache, computed: bytes per token per layer x layers x positions x pages"
    )
    peak_bytes: int | None = described("largest allocation measured during its timed run")
    fit: bool | None = described("false where its run ran out of the device's memory")


@dataclass
class Memory:
    """Each batch's KV cache, computed from the model's dims and the batch's lengths, beside
    the measured peak, and the batches that did not fit (`vlmprof.metrics.memory`)."""

    dtype: str | None = described("the dtype the cache is held in")
    kv_bytes_per_token_per_layer: int | None = described(
        "2 (K and V) x KV heads x head dim x bytes per element"
    )
    layers: int | None = described("decoder layers, each with its cache")
    batches: list[BatchMemory] = described("every batch", factory=list)
    kv_cache_bytes_max: int | None = described("the largest KV cache of a batch that fit")
    peak_bytes_max: int | None = described("the largest peak of a batch that fit")
    batches_did_not_fit: int | None = described("batches that ran out of memory")
    pages_did_not_fit: int | None = described("their pages")
    method: str | None = described("how the figures are computed")
    reason: str | None = described("why the KV cache is not computed, where it is not")


@dataclass
class ShardEnvironment:
    """Where one shard ran, and the median clocks its runs' telemetry saw."""

    shard: int | None = described("the shard")
    device: str | None = described("its device (cpu, cuda:N)")
    gpu_index: int | None = described("its GPU's CUDA index as the job saw it")
    gpu_uuid: str | None = described("its GPU's UUID")
    gpu_name: str | None = described("its GPU's model name")
    sm_clock_median_mhz: float | None = described("median SM clock of its runs (MHz)")
    mem_clock_median_mhz: float | None = described("median memory clock of its runs (MHz)")
    telemetry_runs: int | None = described("its runs with telemetry")


@dataclass
class Environment:
    """The machine and software of the run (`vlmprof.metrics.environment`): the GPU facts
    are the first shard's."""

    git_commit: str | None = described("the source commit measured")
    git_dirty: bool | None = described("whether the source had uncommitted changes")
    git_diff_sha256: str | None = described("sha256 of those changes")
    git_source: str | None = described("where the commit was read: git, stamp or unknown")
    python: str | None = described("Python version")
    platform: str | None = described("operating system")
    cpu_model: str | None = described("CPU model")
    packages: dict[str, str | None] = described("versions of the packages", factory=dict)
    cuda_version: str | None = described(
        "CUDA version the timing job's torch was built with (from its placement; in"
        " documents written before placements recorded it, the aggregating process's)"
    )
    cudnn_version: int | None = described("cuDNN version the timing job's torch loaded (likewise)")
    device_requested: str | None = described("the config's device")
    device_used: str | None = described("the device the records name")
    device_name: str | None = described("GPU model name, or cpu")
    device_error: str | None = described("a problem with the device, where there was one")
    gpu_name: str | None = described("GPU model name (NVML)")
    gpu_uuid: str | None = described("GPU UUID")
    driver: str | None = described("driver version")
    sm_clock_mhz: int | None = described("SM clock at aggregation (MHz)")
    sm_clock_max_mhz: int | None = described("highest SM clock (MHz)")
    mem_clock_mhz: int | None = described("memory clock at aggregation (MHz)")
    mem_clock_max_mhz: int | None = described("highest memory clock (MHz)")
    power_limit_mw: int | None = described("enforced power limit (mW)")
    memory_total_bytes: int | None = described("GPU memory")
    nvml: str | None = described("ok, or why NVML was unavailable")
    shards: list[ShardEnvironment] | None = described("where each shard ran")


@dataclass
class InputPage:
    """One page profiled: its manifest facts and the view facts its records report."""

    image_id: str | None = described("the page's id")
    category: str | None = described("its category")
    width: int | None = described("width (px)")
    height: int | None = described("height (px)")
    sha256: str | None = described("sha256 of its file")
    mode: str | None = described("resolution mode")
    n_crops: int | None = described("crops")
    image_tokens: int | None = described("image tokens the decoder sees")
    prefill_len: int | None = described("prompt length (tokens)")


# --- cost, timeline ------------------------------------------------------------------------


@dataclass
class PublishedFigure:
    """A published throughput of DeepSeek-OCR, for scale (not measured here)."""

    figure: str | None = described("the figure as published")
    setting: str | None = described("the hardware and setting")
    source: str | None = described("where it was published")
    pages_per_day: int | None = described("pages per day, where it gives them")
    tokens_per_s: int | None = described("tokens/s, where it gives them")


@dataclass
class Cost:
    """What a page of real length costs (`vlmprof.metrics.cost`), from the run's measured
    end-to-end rate; only `available` and `reason` where no page was timed."""

    available: bool | None = described("whether a page was timed with at least two tokens")
    reason: str | None = described("why not, where not")
    processor: str | None = described(
        'what ran the model: "GPU", or "CPU" (then every GPU figure is the CPU\'s)'
    )
    output_tokens: int | None = described("the page's length (cost.output_tokens)")
    measured_tokens: float | None = described("mean tokens the timed runs generated")
    batch_size: float | None = described("pages sharing the GPU (mean batch size)")
    prefill_ms: float | None = described("measured mean prefill (ms)")
    decode_per_token_ms: float | None = described("measured mean time per output token (ms)")
    gpu_ms_per_page: float | None = described(
        "GPU time of a page (ms): its batch's prefill and decode at output_tokens, shared by "
        "its pages, over every ok record"
    )
    host_ms_per_page: float | None = described("the host's load and preprocess of a page (ms)")
    host_ms: dict[str, float | None] = described("that time by host stage (ms)", factory=dict)
    end_to_end_ms_per_page: float | None = described(
        "device time of a page end to end (ms): the measured wall time per page "
        "(aggregates.end_to_end.device_s over its pages) with each batch's run taken to "
        "output_tokens; null for records without host-clock spans"
    )
    page_latency_ms: Summary | None = described(
        "each page's latency at output_tokens (ms): its own load and preprocessing, its "
        "batch's wait for the pages read after it, and its batch's run; p50 and p90 across "
        "the pages"
    )
    pages_per_gpu_day: float | None = described(
        "pages per GPU-day end to end: a day over end_to_end_ms_per_page"
    )
    output_tokens_per_s_end_to_end: float | None = described(
        "output_tokens over end_to_end_ms_per_page: one device's rate, host in the loop"
    )
    output_tokens_per_s_gpu_side: float | None = described(
        "output_tokens over gpu_ms_per_page: the GPU side alone"
    )
    gpu_hour_price: float | None = described("cost.gpu_hour_price")
    gpu_cost_per_1000_pages: float | None = described(
        "1,000 pages' end-to-end device time at that price"
    )
    joules_per_page: float | None = described("energy of a page (J)")
    energy_cost_per_1000_pages: float | None = described(
        "energy cost per 1,000 pages at telemetry.energy_price_per_kwh"
    )
    published: list[PublishedFigure] = described("published throughput, for scale", factory=list)
    assumptions: list[str] = described("what the figures assume", factory=list)

    @staticmethod
    def upgrade(data: Mapping[str, Any]) -> Mapping[str, Any]:
        """Documents from before the cost was taken end to end held pages per GPU-day and
        their price from GPU time alone: other figures, left out."""
        if "end_to_end_ms_per_page" in data:
            return data
        redefined = ("pages_per_gpu_day", "gpu_cost_per_1000_pages")
        return {key: value for key, value in data.items() if key not in redefined}


@dataclass
class TimelinePage:
    """One page of a stage in the operator pass."""

    image_id: str | None = described("the page")
    wall_ms: float | None = described("the stage's time under the profiler (ms)")
    busy_ms: float | None = described("time covered by kernels (ms)")
    kernels: int | None = described("kernels (on CPU, top-level operators)")
    launches: int | None = described("launch calls")


@dataclass
class TimelineStage:
    """One stage in the operator pass (ops/timeline.json), set against the timing pass
    (`vlmprof.metrics.dilation`)."""

    basis: str | None = described("what counts as busy: cuda kernels or cpu ops")
    wall_ms: float | None = described("the stage's time under the profiler (ms)")
    busy_ms: float | None = described("time covered by kernels (ms)")
    busy_fraction: float | None = described("busy_ms over wall_ms, under the profiler")
    kernels: int | None = described("kernels (on CPU, top-level operators)")
    launches: int | None = described("launch calls")
    mean_kernel_us: float | None = described("mean kernel (or operator) time (us)")
    launch_overhead_us: float | None = described("mean launch call time (us); null on CPU")
    idle_gaps: int | None = described("gaps between kernels")
    idle_gap_ms: float | None = described("time in those gaps (ms)")
    verdict: str | None = described("launch-bound or not, under the profiler")
    runs_per_page: int | None = described("runs of the stage per page (decode: its steps)")
    pages: list[TimelinePage] | None = described("each page's figures")
    run_unit: str | None = described("what one run is: page, or decode step")
    timed_pages: int | None = described("pages both passes measured")
    profiled_ms_per_run: float | None = described("the profiler pass's time per run (ms)")
    timed_ms_per_run: float | None = described("the timing pass's time per run (ms)")
    kernel_ms_per_run: float | None = described("kernel time per run (ms)")
    kernels_per_run: float | None = described("kernels per run")
    dilation: float | None = described("profiled_ms_per_run over timed_ms_per_run")
    busy_fraction_timed: float | None = described(
        "kernel time over the timing pass's stage time, capped at 1"
    )
    busy_fraction_capped: bool | None = described("whether it was capped")
    verdict_timed: str | None = described("the launch-bound verdict on busy_fraction_timed")
    launch_overhead_us_timed: float | None = described("launch overhead over the dilation (us)")
    timed_note: str | None = described("why the timed figures are absent, where they are")

    def quoted_busy_fraction(self) -> float | None:
        """The busy fraction a reader is quoted: against the timed stage where known, else
        under the profiler."""
        return self.busy_fraction if self.busy_fraction_timed is None else self.busy_fraction_timed


# --- the document --------------------------------------------------------------------------


@dataclass
class MetricsDocument:
    """metrics.json: what one run measured and how to read it. Sections added after a
    document was written are null (or empty) in it."""

    run_name: str | None = described("the run's name")
    aggregates: Aggregates = described("timing statistics and rates", factory=Aggregates)
    counts: Counts = described("records, pages, repeats and failures", factory=Counts)
    failures: list[Failure] = described("every failed record", factory=list)
    repeatability: Repeatability = described(
        "whether repeats agree within tolerance", factory=Repeatability
    )
    work: Work = described(
        "where the FLOPs and bytes come from (in documents from before it was named: formulas "
        "where static.per_view_flops holds views, else counted)",
        factory=lambda: Work.of(WorkSource.FORMULAS),
    )
    mfu: Mfu = described("model FLOP utilisation", factory=Mfu)
    mbu: Mbu = described("memory bandwidth utilisation", factory=Mbu)
    roofline: Roofline | None = described("each stage's roofline bound")
    peaks: Peaks = described("the peaks divided by", factory=Peaks)
    static: Static = described("parameters and FLOPs per view", factory=Static)
    telemetry: Telemetry | None = described("GPU energy, power and clocks")
    host: Host | None = described("what the host did during the runs")
    environment: Environment = described("machine, software and source", factory=Environment)
    inputs: list[InputPage] = described("the pages profiled", factory=list)
    config: dict[str, Any] = described(
        "the run's configuration as checked (config/README.md documents each key), and "
        "`resolved`: the model spec as run (a mapping, as its fields may grow)",
        factory=dict,
    )
    config_hash: str | None = described("sha256 of the configuration")
    assumptions: list[str] = described("what a reader needs before trusting", factory=list)
    cost: Cost | None = described("what a page of real length costs")
    decode_slots: DecodeSlots | None = described(
        "the decode slot-steps spent on pages that had ended (static batching's cost)"
    )
    timeline: dict[str, TimelineStage] | None = described(
        "each stage in the operator pass, against the timing pass; null without the pass"
    )
    pipeline: Pipeline | None = described("the host against the GPU: which side binds")
    memory: Memory | None = described("each batch's KV cache and peak memory; what did not fit")

    @staticmethod
    def upgrade(data: Mapping[str, Any]) -> Mapping[str, Any]:
        """A document from before the work's source was named: counted where no view is
        costed by formulas (`static.per_view_flops` empty), else formulas."""
        if "work" in data:
            return data
        costed = bool((data.get("static") or {}).get("per_view_flops"))
        source = WorkSource.FORMULAS if costed else WorkSource.COUNTED
        return {**data, "work": to_plain(Work.of(source))}

    @classmethod
    def from_dict(cls, data: Any, where: str = "metrics.json") -> MetricsDocument:
        """A document from plain JSON; `where` names it in errors."""
        return read_as(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON of every section, null ones included."""
        return to_plain(self)

    @classmethod
    def read(cls, path: str | Path) -> MetricsDocument:
        """A metrics.json file; a DocumentError naming it when it is no metrics document."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DocumentError(f"{path}: not JSON ({error}); rerun its aggregate step") from None
        if not isinstance(data, Mapping) or "stage_ms" not in (data.get("aggregates") or {}):
            raise DocumentError(f"{path}: no aggregates.stage_ms; not a vlmprof metrics.json")
        return cls.from_dict(data, str(path))

    def write(self, path: str | Path) -> None:
        """Write the document to `path` atomically (key-sorted JSON)."""
        write_json_atomic(path, self.to_dict())


def schema_page() -> str:
    """docs/metrics-schema.md: every section's keys, types and meaning, from the classes."""
    return "\n".join(
        [
            "# metrics.json",
            "",
            "What each run's `metrics.json` holds, section by section. Generated from the "
            f"classes of `vlmprof.metrics.document` (`{SCHEMA_COMMAND}`); a key added after a "
            "document was written reads as null (or empty) in it. Units are in the key names "
            "(`_ms`, `_tflops`, `_tbps`, `_j`, `_w`, `_mhz`, `_bytes`); fractions are 0 to 1.",
            "",
            schema_markdown(MetricsDocument),
            "## Retired keys",
            "",
            "Older documents hold these; reading one leaves them out (`*`: any stage).",
            "",
            "| key | what replaced it |",
            "|---|---|",
            *(f"| `{key}` | {why} |" for key, why in RETIRED.items()),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """`schema`: print docs/metrics-schema.md."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["schema"]:
        print(f"usage: {SCHEMA_COMMAND}", file=sys.stderr)
        return 2
    print(schema_page(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

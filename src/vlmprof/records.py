"""Run records: one per image x repeat, written as JSON lines and read back as `RunRecord`.

A record holds `<stage>_ms` for every stage `vlmprof.stages` marks as recorded (their
definitions and nesting live there); the derived stages are computed by aggregation. A
record written before a field existed reads with that field's default
(`vlmprof.typed_json`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.placement import Placement
from vlmprof.stages import RECORDED_STAGES, record_field
from vlmprof.typed_json import read_as

# The record fields holding a stage's time, one per recorded stage.
STAGE_COLUMNS: tuple[str, ...] = tuple(record_field(name) for name in RECORDED_STAGES)
# How an out-of-memory run's error begins (the timing pass's one-line reason of a
# torch.OutOfMemoryError): its batch did not fit, a finding of a batch-size sweep, not a fault.
OUT_OF_MEMORY = "OutOfMemoryError"


def did_not_fit(error: str | None) -> bool:
    """Whether a record's `error` says its batch ran out of the device's memory."""
    return error is not None and error.startswith(OUT_OF_MEMORY)


def batch_key(record: dict[str, Any]) -> tuple[Any, Any]:
    """Which batch a record (as a dict) belongs to: its shard and batch index; a record from
    before batches were numbered is a batch of its own page."""
    batch = record.get("batch")
    return record.get("shard"), record["image_id"] if batch is None else batch


@dataclass
class RunRecord:
    """Measurements of one image in one repeat (times in milliseconds)."""

    run_id: str
    image_id: str
    repeat: int
    status: str = "ok"
    error: str | None = None
    mode: str | None = None
    n_crops: int | None = None
    image_tokens: int | None = None
    prefill_len: int | None = None
    tokens: int | None = None
    # The page's length: the most tokens it generates (runtime/output_length.py), and how
    # that was set; the page ends there or at its end-of-sequence.
    target_tokens: int | None = None
    target_source: str | None = None
    # Its batch's decode slot-steps (pages x decode steps run) and, of those, the idle ones:
    # steps a page's slot still ran after the page had ended (static batching's cost). The
    # batch's figures, as its stage times are.
    decode_slot_steps: int | None = None
    idle_slot_steps: int | None = None
    # FLOPs and bytes of each stage of the page ({stage: {key: value}}, flops/work.WORK_KEYS),
    # counted over an untimed run of it (flops/page_work.py); None in records from before.
    counted_work: dict[str, dict[str, float]] | None = None
    load_ms: float | None = None
    preprocess_ms: float | None = None
    # How long the timing pass waited for the page's inputs (0 when workers ran ahead).
    input_wait_ms: float | None = None
    # Host clock (time.perf_counter, one clock for every process of the host) of the page's
    # load and preprocessing, of the timing pass's wait for it (first repeat only), and of
    # its batch's run: the batch timeline's spans.
    host_span_s: list[float] | None = None
    wait_span_s: list[float] | None = None
    run_span_s: list[float] | None = None
    # The shard's warm-up (compilation and graph capture included), on the record of the
    # page that ran it (its first repeat); None on every other record.
    warmup_ms: float | None = None
    prefill_ms: float | None = None
    decode_ms: float | None = None
    vision_ms: float | None = None
    sam_ms: float | None = None
    clip_ms: float | None = None
    projector_ms: float | None = None
    ttft_ms: float | None = None
    decode_step_ms: list[float] = field(default_factory=list)
    peak_mem_bytes: dict[str, int] = field(default_factory=dict)
    device: str | None = None
    dtype: str | None = None
    # Where the job ran: device, dtype and GPU (vlmprof.placement), resolved once per job.
    placement: Placement | None = None
    shard: int | None = None
    # Pages generated together (their stage times are the batch's) and the batch's index.
    batch_size: int = 1
    batch: int | None = None
    # GPU energy, power and clocks of the run (vlmprof.runtime.telemetry); None without NVML.
    telemetry: dict[str, Any] | None = None
    # The run thread's CPU time and context switches, the machine's CPU steal time.
    host: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "run record") -> RunRecord:
        """A record from plain JSON; `where` names it in errors (a file and line)."""
        return read_as(cls, data, where)


def iter_run_records(paths: Iterable[str | Path]) -> Iterator[RunRecord]:
    """Run records from JSON-lines files as `RunRecord`, in file order, read as they are
    asked for; a line that is no record raises naming its file and line."""
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield RunRecord.from_dict(json.loads(line), f"{path}, line {number}")


def read_run_records(paths: Iterable[str | Path]) -> list[RunRecord]:
    """Every run record of JSON-lines files as `RunRecord`, in file order."""
    return list(iter_run_records(paths))


def iter_records(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Run records from JSON-lines files, in file order, read as they are asked for."""
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            yield from (json.loads(line) for line in handle if line.strip())


def read_records(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Read run records from JSON-lines files as plain mappings, in file order (what the
    aggregation reads)."""
    return list(iter_records(paths))


def record_placement(record: dict[str, Any]) -> Placement | None:
    """The placement a run record names; None for records written before placements were."""
    placement = record.get("placement")
    return None if placement is None else Placement.from_dict(placement)


def first_placement(paths: Iterable[str | Path]) -> Placement | None:
    """The placement of the first record in `paths` (the first shard's) that names one."""
    placements = (record.placement for record in iter_run_records(paths))
    return next((placement for placement in placements if placement is not None), None)


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records as a DataFrame with one row per image x repeat (list columns kept)."""
    return pd.DataFrame.from_records(records)

"""Run records read back as `RunRecord`: every committed record file and every record a run
writes round-trips (a field added since reads as its default), and a record that is no
record is named by its file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.records import page_record
from tests.test_metrics_document import MEASUREMENTS, lost_keys
from vlmprof.placement import Placement
from vlmprof.records import RunRecord, read_run_records
from vlmprof.typed_json import DocumentError

COMMITTED = sorted(MEASUREMENTS.glob("**/*records.jsonl"))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.relative_to(MEASUREMENTS).as_posix())
def test_every_committed_record_reads_and_writes_back_what_it_holds(path: Path):
    records = read_run_records([path])
    originals = _lines(path)
    assert len(records) == len(originals) > 0
    for record, original in zip(records, originals, strict=True):
        assert lost_keys(original, record.to_dict()) == set()


def test_a_record_reads_back_as_written(tmp_path: Path):
    written = page_record(
        "p",
        (1240, 1754),
        1,
        prefill_ms=30.0,
        decode_step_ms=[2.0, 2.5],
        placement=Placement("cuda:1", "bfloat16", 1, "GPU-1a2b", "NVIDIA H100"),
        counted_work={"vision": {"flops": 2e9, "bytes": 1e6}},
        telemetry={"energy_j": {"run": 12.5}},
    )
    path = tmp_path / "shard-0.jsonl"
    path.write_text(json.dumps(written) + "\n")
    (record,) = read_run_records([path])
    assert record.placement == Placement("cuda:1", "bfloat16", 1, "GPU-1a2b", "NVIDIA H100")
    assert record.to_dict() == written
    # A record from before a field was added reads with its default.
    old = RunRecord.from_dict({"run_id": "r", "image_id": "p", "repeat": 0})
    assert old.batch_size == 1 and old.placement is None and old.decode_step_ms == []


def test_a_line_that_is_no_record_is_named_by_its_file_and_line(tmp_path: Path):
    path = tmp_path / "shard-0.jsonl"
    good = page_record("p", (600, 500), 0)
    path.write_text(json.dumps(good) + "\n" + json.dumps({"run_id": "r", "repeat": 0}) + "\n")
    with pytest.raises(DocumentError, match=f"{path}, line 2: image_id: missing"):
        read_run_records([path])
    path.write_text(json.dumps({**good, "repeat": "first"}) + "\n")
    with pytest.raises(DocumentError, match=f"{path}, line 1: repeat: expected an integer"):
        read_run_records([path])
    path.write_text(json.dumps({**good, "placement": {"device": "cpu"}}) + "\n")
    with pytest.raises(DocumentError, match="line 1: placement.dtype: missing"):
        read_run_records([path])


@pytest.mark.slow
def test_the_records_a_run_writes_read_back_exactly(pipeline_run: Path):
    paths = sorted((pipeline_run / "runs").glob("shard-*.jsonl"))
    originals = [line for path in paths for line in _lines(path)]
    assert [record.to_dict() for record in read_run_records(paths)] == originals

"""Comparing two runs: identical runs pass, a slower stage fails by name, CLI exit codes."""

import copy
import json

import pytest

from vlmprof.compare import compare_dirs, compare_runs, main, verdict
from vlmprof.metrics.aggregate import aggregate_records
from vlmprof.records import RunRecord


def metrics_of(scale_by_stage=None):
    """A metrics.json-shaped dict from records, with chosen stage fields scaled."""
    scale_by_stage = scale_by_stage or {}
    records = []
    for repeat in range(3):
        times = {
            "prefill_ms": 120.0 + repeat,
            "vision_ms": 70.0,
            "sam_ms": 45.0,
            "clip_ms": 22.0,
            "projector_ms": 3.0,
            "decode_ms": 31.0,
            "decode_step_ms": [1.0] * 31,
        }
        for stage, factor in scale_by_stage.items():
            times[stage] = (
                [v * factor for v in times[stage]]
                if stage == "decode_step_ms"
                else (times[stage] * factor)
            )
        record = RunRecord(run_id="r", image_id="p", repeat=repeat, tokens=32, **times)
        records.append(record.to_dict())
    metrics = aggregate_records(records)
    metrics["mfu"] = {"per_stage": {"decode": {"datasheet": 0.01, "calibrated": 0.012}}}
    return metrics


def test_identical_runs_pass():
    a = metrics_of()
    df = compare_runs(a, copy.deepcopy(a))
    assert verdict(df) == "PASS"
    assert (df.loc[df["kind"] == "mean (ms)", "delta %"] == 0).all()
    assert "mfu decode (calibrated)" in df.index


def test_one_slower_stage_fails_by_name():
    df = compare_runs(metrics_of(), metrics_of({"sam_ms": 1.3}), tolerance=0.10)
    assert verdict(df) == "FAIL: sam"
    assert df.loc["sam", "delta %"] == pytest.approx(30.0)
    assert not df.loc["sam", "pass"]
    assert df.loc["clip", "pass"]


def test_tolerance_decides():
    slower = metrics_of({"sam_ms": 1.3})
    assert verdict(compare_runs(metrics_of(), slower, tolerance=0.35)) == "PASS"


def test_stage_missing_in_one_run_fails():
    b = metrics_of()
    del b["aggregates"]["stage_ms"]["projector"]
    assert verdict(compare_runs(metrics_of(), b)) == "FAIL: projector"


def write_run(folder, metrics):
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_compare_dirs_and_cli(tmp_path, capsys):
    a = write_run(tmp_path / "a", metrics_of())
    same = write_run(tmp_path / "same", metrics_of())
    slow = write_run(tmp_path / "slow", metrics_of({"decode_ms": 1.3, "decode_step_ms": 1.3}))
    assert compare_dirs(a, same, 0.1)[1] == "PASS"
    out = tmp_path / "table.md"
    assert main([str(a), str(slow), "--tolerance", "0.1", "--out", str(out)]) == 1
    text = out.read_text()
    assert "FAIL: decode, decode_per_token" in text
    assert "| decode " in text
    assert "FAIL" in capsys.readouterr().out
    assert main([str(a / "metrics.json"), str(same)]) == 0


def test_cli_missing_run_is_an_error(tmp_path, capsys):
    a = write_run(tmp_path / "a", metrics_of())
    assert main([str(a), str(tmp_path / "absent")]) == 2
    assert "metrics.json" in capsys.readouterr().err

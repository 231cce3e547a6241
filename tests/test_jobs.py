"""Jobs as the workflow runs them: the launcher, the aggregate job's composition, and the
Nsight Systems job under a stand-in for nsys (which records what it was asked and runs the
wrapped timing command)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from tests.records import page_record
from tests.workflow_helpers import default_config
from vlmprof.device_choice import DeviceUnavailableError
from vlmprof.flops.static_compute import build_static_compute
from vlmprof.jobs.aggregate import aggregate
from vlmprof.jobs.profile import nsight_systems, nsys_profile_command, nsys_stats_command
from vlmprof.models.base import ModelSpec
from vlmprof.models.deepseek_ocr.dims import preset_dims
from vlmprof.runtime.launcher import claimed_device, launched_model
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.timing_cli import timing_command

SPEC = ModelSpec(preset="small", mode="tiny", device="auto", dtype="auto")
# Records its arguments; `profile` makes the report file and runs the wrapped command,
# `stats` prints a summary.
STAND_IN_NSYS = f"""#!{sys.executable}
import pathlib, subprocess, sys
args = sys.argv[1:]
with open(pathlib.Path(sys.argv[0]).with_name("calls.jsonl"), "a") as log:
    log.write(__import__("json").dumps(args) + "\\n")
if args[0] == "profile":
    report = args[args.index("--output") + 1]
    pathlib.Path(report + ".nsys-rep").write_text("report")
    sys.exit(subprocess.run(args[args.index("--output") + 2 :]).returncode)
print("NVTX range summary of", args[-1])
"""


def test_the_launched_model_is_built_on_the_claimed_device():
    with launched_model(SPEC) as adapter:
        assert adapter.spec.device == ("cuda" if torch.cuda.is_available() else "cpu")
        assert adapter.device.type == adapter.spec.device.split(":")[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_job_on_a_node_without_the_planned_gpu_stops_naming_the_key():
    with (
        pytest.raises(DeviceUnavailableError, match="device: cuda was requested"),
        claimed_device("cuda"),
    ):
        pass


def test_the_aggregate_job_composes_metrics_from_its_files(tmp_path: Path):
    records = tmp_path / "shard-0.jsonl"
    times = {"tokens": 4, "prefill_ms": 30.0, "decode_ms": 6.0, "decode_step_ms": [2.0] * 3}
    lines = [json.dumps(page_record("p", (1240, 1754), repeat, **times)) for repeat in (0, 1)]
    records.write_text("\n".join(lines) + "\n")
    subset = tmp_path / "subset.csv"
    pd.DataFrame([{"image_id": "p", "path": "/p.png", "category": "table"}]).to_csv(subset)
    static = tmp_path / "static.json"
    costs = build_static_compute(preset_dims("small"), ["gundam"], 300, 302, "float32", False)
    static.write_text(json.dumps(costs))
    calibration = tmp_path / "calibration.json"
    calibration.write_text(
        json.dumps({"enabled": True, "tflops": 0.1, "tbps": 0.01, "method": "m"})
    )
    timeline = tmp_path / "timeline.json"
    timeline.write_text(json.dumps({"busy_fraction": 0.5}))
    spec = json.dumps(dataclasses.asdict(ModelSpec(preset="small", device="cpu", dtype="auto")))
    config = json.dumps(default_config())
    metrics, tables = tmp_path / "metrics.json", tmp_path / "tables" / "stage_ms.csv"
    tables.parent.mkdir()
    aggregate(
        [str(records)],
        str(subset),
        str(static),
        str(calibration),
        str(timeline),
        str(metrics),
        str(tables),
        spec=spec,
        config=config,
        peak_tflops=2.0,
        peak_bandwidth_tbps=None,
        context_len_mode="auto",
        context_len_fixed=None,
        tolerance=0.1,
        device_requested="auto",
    )
    written = json.loads(metrics.read_text())
    assert written["counts"]["records"] == 2
    assert written["config"]["resolved"] == json.loads(spec)
    assert written["environment"]["device_requested"] == "auto"
    assert written["peaks"]["calibrated"]["tflops"] == 0.1
    assert written["peaks"]["override"]["tflops"] == 2.0
    assert written["timeline"] == {"busy_fraction": 0.5}
    assert {"stage_ms.csv", "mfu.csv", "mbu.csv", "per_image.csv"} <= {
        path.name for path in tables.parent.iterdir()
    }


def test_nsys_wraps_the_timing_command_and_summarises_its_nvtx_ranges(tmp_path: Path):
    timing = timing_command("{}", "{}", tmp_path / "records.jsonl", [("p", "/pages/p.png")])
    assert timing[1:3] == ["-m", "vlmprof.runtime.timing_cli"]
    assert timing[3:] == ["{}", "{}", str(tmp_path / "records.jsonl"), "p=/pages/p.png"]
    assert nsys_profile_command("nsys", tmp_path / "timing", timing) == [
        "nsys",
        "profile",
        "--trace=cuda,nvtx,osrt",
        "--force-overwrite=true",
        "--output",
        str(tmp_path / "timing"),
        *timing,
    ]
    assert nsys_stats_command("nsys", tmp_path / "timing") == [
        "nsys",
        "stats",
        "--report",
        "nvtx_sum",
        f"{tmp_path / 'timing'}.nsys-rep",
    ]


def _subset(tmp_path: Path) -> Path:
    pages = []
    for image_id in ("first", "second"):
        Image.new("RGB", (640, 640), "white").save(tmp_path / f"{image_id}.png")
        pages.append({"image_id": image_id, "path": str(tmp_path / f"{image_id}.png")})
    pd.DataFrame(pages).to_csv(tmp_path / "subset.csv", index=False)
    return tmp_path / "subset.csv"


def _settings() -> str:
    run = ProfileSettings.run_settings(default_config())
    return json.dumps({**run, "max_new_tokens": 2, "warmup_rounds": 0})


def test_the_nsight_job_times_one_run_of_the_first_page_under_nsys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "nsys").write_text(STAND_IN_NSYS)
    (tools / "nsys").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    summary = tmp_path / "nsys" / "summary.txt"
    summary.parent.mkdir()
    spec = json.dumps(dataclasses.asdict(SPEC) | {"device": "cpu"})
    nsight_systems(str(_subset(tmp_path)), str(summary), spec=spec, settings=_settings())
    calls = [json.loads(line) for line in (tools / "calls.jsonl").read_text().splitlines()]
    assert [call[0] for call in calls] == ["profile", "stats"]
    assert "--trace=cuda,nvtx,osrt" in calls[0]
    assert summary.read_text() == f"NVTX range summary of {summary.parent / 'timing'}.nsys-rep\n"
    records = [json.loads(line) for line in (summary.parent / "records.jsonl").open()]
    assert [(r["image_id"], r["repeat"], r["shard"], r["status"]) for r in records] == [
        ("first", 0, 0, "ok")
    ]


def test_without_nsys_the_nsight_job_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    summary = tmp_path / "summary.txt"
    nsight_systems(str(_subset(tmp_path)), str(summary), spec="{}", settings=_settings())
    assert summary.read_text().startswith("skipped: nsys (Nsight Systems) is not on PATH")

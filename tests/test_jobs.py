"""Jobs as the workflow runs them: the launcher, the aggregate job's composition, and the
Nsight Systems job under a stand-in for nsys (which records what it was asked and runs the
wrapped timing command)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from tests.records import page_record
from tests.workflow_helpers import default_config
from vlmprof.device import resolve_placement
from vlmprof.device_choice import DeviceUnavailableError
from vlmprof.flops.static_compute import build_static_compute
from vlmprof.jobs.aggregate import aggregate
from vlmprof.jobs.profile import (
    nsight_systems,
    nsys_profile_command,
    nsys_stats_command,
    profile_shard,
)
from vlmprof.metrics.dilation import NO_PAGES
from vlmprof.models.base import ModelSpec
from vlmprof.models.deepseek_ocr.dims import preset_dims
from vlmprof.placement import Placement
from vlmprof.runtime import launcher
from vlmprof.runtime.launcher import claimed_placement, launched_model
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


def _counted_placements(monkeypatch: pytest.MonkeyPatch) -> list[Placement]:
    """Every placement the launcher resolves from now on, resolved as it would be."""
    resolved: list[Placement] = []

    def resolve(device: str, dtype: str) -> Placement:
        resolved.append(resolve_placement(device, dtype))
        return resolved[-1]

    monkeypatch.setattr(launcher, "resolve_placement", resolve)
    return resolved


def test_the_launched_model_is_built_at_the_placement_resolved_once(
    monkeypatch: pytest.MonkeyPatch,
):
    resolved = _counted_placements(monkeypatch)
    with launched_model(SPEC) as (adapter, placement):
        assert resolved == [placement]
        assert adapter.device == torch.device(placement.device)
        assert (adapter.spec.device, adapter.spec.dtype) == (placement.device, placement.dtype)
    if torch.cuda.is_available():
        # A bare `cuda` is the GPU the job claimed, by its index.
        assert placement.device == f"cuda:{placement.gpu_index}" and placement.gpu_uuid
    else:
        assert placement == Placement("cpu", "float32")


def test_a_shard_job_writes_its_one_placement_into_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    subset = _subset(tmp_path)
    (tmp_path / "unreadable.png").write_text("not an image")
    frame = pd.read_csv(subset)
    unreadable = {"image_id": "unreadable", "path": str(tmp_path / "unreadable.png")}
    pd.concat([frame, pd.DataFrame([unreadable])]).to_csv(subset, index=False)
    resolved = _counted_placements(monkeypatch)
    records = tmp_path / "shard-0.jsonl"
    spec = json.dumps(dataclasses.asdict(SPEC) | {"device": "cpu"})
    profile_shard(
        str(subset),
        str(records),
        str(tmp_path / "shard-0.outputs.pt"),
        0,
        spec=spec,
        settings=json.dumps(json.loads(_settings()) | {"repeats": 1}),
        shards=1,
        progress_label="shard",
    )
    written = [json.loads(line) for line in records.open()]
    assert [r["status"] for r in written] == ["ok", "ok", "error"]
    (placement,) = resolved
    assert placement == Placement("cpu", "float32")
    assert all(Placement.from_dict(r["placement"]) == placement for r in written)
    assert all((r["device"], r["dtype"]) == ("cpu", "float32") for r in written)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_job_on_a_node_without_the_planned_gpu_stops_naming_the_key():
    with (
        pytest.raises(DeviceUnavailableError, match="device: cuda was requested"),
        claimed_placement("cuda", "auto"),
    ):
        pass


AGGREGATED_SPEC = json.dumps(
    dataclasses.asdict(ModelSpec(preset="small", device="cpu", dtype="auto"))
)
TIMES = {"tokens": 4, "prefill_ms": 30.0, "decode_ms": 6.0, "decode_step_ms": [2.0] * 3}
# A stage of ops/timeline.json written before it kept each page's figures.
TIMELINE_STAGE = {"basis": "cpu ops", "wall_ms": 10.0, "busy_fraction": 0.5, "verdict": "x"}


def _aggregated(tmp_path: Path, shards: list[list[dict]], settings: str = "{}") -> dict:
    """metrics.json of the aggregate job over `shards` (each a list of records) of page p,
    of an arm run with `settings` (its params text)."""
    records = []
    for index, shard in enumerate(shards):
        records.append(tmp_path / f"shard-{index}.jsonl")
        records[-1].write_text("".join(json.dumps(record) + "\n" for record in shard))
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
    timeline.write_text(json.dumps({"decode": TIMELINE_STAGE}))
    config = json.dumps(default_config())
    metrics, tables = tmp_path / "metrics.json", tmp_path / "tables" / "stage_ms.csv"
    tables.parent.mkdir()
    aggregate(
        [str(path) for path in records],
        str(subset),
        str(static),
        str(calibration),
        str(timeline),
        str(metrics),
        str(tables),
        spec=AGGREGATED_SPEC,
        settings=settings,
        config=config,
        peak_tflops=2.0,
        peak_bandwidth_tbps=None,
        context_len_mode="auto",
        context_len_fixed=None,
        tolerance=0.1,
        device_requested="auto",
    )
    assert {"stage_ms.csv", "mfu.csv", "mbu.csv", "per_image.csv"} <= {
        path.name for path in tables.parent.iterdir()
    }
    return json.loads(metrics.read_text())


def test_the_aggregate_job_composes_metrics_from_its_files(tmp_path: Path):
    shard = [page_record("p", (1240, 1754), repeat, **TIMES) for repeat in (0, 1)]
    written = _aggregated(tmp_path, [shard])
    assert written["counts"]["records"] == 2
    assert written["config"]["resolved"] == json.loads(AGGREGATED_SPEC)
    assert written["environment"]["device_requested"] == "auto"
    assert written["peaks"]["calibrated"]["tflops"] == 0.1
    assert written["peaks"]["override"]["tflops"] == 2.0
    # The profiler pass's figures, and why they are not set against the timing pass.
    decode = written["timeline"]["decode"]
    assert {key: decode[key] for key in TIMELINE_STAGE} == TIMELINE_STAGE
    assert decode["timed_note"] == NO_PAGES


def test_the_resolved_config_keeps_an_arms_run_shape_beside_its_model(tmp_path: Path):
    shard = [page_record("p", (1240, 1754), repeat, **TIMES) for repeat in (0, 1)]
    settings = json.dumps({"repeats": 2, "batch_size": 2, "workers": 1})
    written = _aggregated(tmp_path, [shard], settings)
    shape = {"batch_size": 2, "workers": 1}
    assert written["config"]["resolved"] == json.loads(AGGREGATED_SPEC) | shape


def test_the_aggregate_job_describes_the_gpu_the_records_ran_on(tmp_path: Path):
    """Not the aggregating machine's: its environment and peaks are the first shard's GPU."""
    shards = [
        [
            page_record(
                "p",
                (1240, 1754),
                repeat,
                shard=index,
                placement=Placement(
                    f"cuda:{index}", "bfloat16", index, uuid, "NVIDIA H200", "12.8", 91002
                ),
                **TIMES,
            )
            for repeat in (0, 1)
        ]
        for index, uuid in enumerate(["GPU-aaaa", "GPU-bbbb"])
    ]
    written = _aggregated(tmp_path, shards)
    environment = written["environment"]
    assert environment["device_used"] == "cuda:0"
    assert environment["device_name"] == "NVIDIA H200"
    assert environment["device_error"] is None
    # NVML here knows no GPU of that UUID: said so, never another GPU's facts.
    assert environment["nvml"].startswith("unavailable: ") and environment["gpu_uuid"] is None
    # The timing job's CUDA and cuDNN, not this process's torch.
    assert (environment["cuda_version"], environment["cudnn_version"]) == ("12.8", 91002)
    assert written["peaks"]["dtype"] == "bfloat16"
    assert written["peaks"]["datasheet"]["tflops"] == 989.0
    assert written["peaks"]["datasheet"]["source"].startswith("datasheet: H200 SXM 141GB")
    assert [(s["shard"], s["gpu_index"], s["gpu_uuid"]) for s in environment["shards"]] == [
        (0, 0, "GPU-aaaa"),
        (1, 1, "GPU-bbbb"),
    ]


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


def test_the_steps_that_run_no_model_import_no_torch():
    """Their jobs start without torch's import (docs/ARCHITECTURE.md); the gate's verdict,
    which loads saved tensors, is a step of its own."""
    steps = ("dataset", "aggregate", "report", "docs")
    script = (
        f"import json, sys, {', '.join(f'vlmprof.jobs.{step}' for step in steps)}\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]\n"
        "print(json.dumps(sorted(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []

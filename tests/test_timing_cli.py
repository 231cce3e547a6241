"""The timing pass as a command (what `nsys profile` wraps) writes the same run records."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

from PIL import Image

from tests.workflow_helpers import default_settings
from vlmprof.runtime.timing_cli import timing_command


def test_timing_cli_profiles_the_named_pages(tmp_path: Path):
    page = tmp_path / "page.png"
    Image.new("RGB", (800, 1000), "white").save(page)
    spec = {"preset": "small", "mode": "base", "device": "cpu", "dtype": "auto"}
    settings = dataclasses.asdict(default_settings(run_id="cli", repeats=2, max_new_tokens=3))
    del settings["eos_id"]  # the command takes it from the model it builds
    out = tmp_path / "records.jsonl"
    pages = [("p1", page), ("missing", tmp_path / "no.png")]
    command = timing_command(json.dumps(spec), json.dumps(settings), out, pages)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr  # one page is missing: not all records ok
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["image_id"], r["status"]) for r in records] == [
        ("p1", "ok"),
        ("p1", "ok"),
        ("missing", "error"),
        ("missing", "error"),
    ]
    assert all(r["tokens"] == 3 for r in records[:2])
    # The shard's warm-up is timed once, on the record of the page that ran it.
    assert records[0]["warmup_ms"] > 0
    assert [r["warmup_ms"] for r in records[1:]] == [None, None, None]

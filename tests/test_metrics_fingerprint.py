"""The CPU default run's metrics.json keeps the key paths, FLOPs, parameters, bytes and
record counts it had before the library was layered (same seed, same shapes); a deliberate
change to the model of work is recorded in the golden file with why (its `made_by`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.metrics_fingerprint import fingerprint

GOLDEN = Path(__file__).parent / "data" / "metrics_fingerprint.json"


@pytest.mark.slow
def test_metrics_keep_their_keys_and_counted_values(pipeline_run: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    now = fingerprint(json.loads((pipeline_run / "metrics.json").read_text()))
    # A list item's keys exist only while the list has items (e.g. failing stages).
    lost = sorted(
        path
        for path in set(golden["keys"]) - set(now["keys"])
        if "[]" not in path or path.split("[]")[0] not in now["keys"]
    )
    assert not lost, f"key paths lost from metrics.json: {lost[:20]}"
    changed = {
        path: (value, now["counted"].get(path))
        for path, value in golden["counted"].items()
        if now["counted"].get(path) is None
        or not math.isclose(value, now["counted"][path], rel_tol=1e-9)
    }
    assert not changed, f"counted values changed (before, now): {changed}"

"""The runs frozen under tests/data/runs/ (tests/frozen_runs.py) are what the code reads and
writes now: each metrics.json and record file reads back exactly through the typed readers,
each per-page table is the one the aggregation makes of its records, and each run was made
with the config the tests say it was, from a committed tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.frozen_runs import CONFIGS, frozen_run
from vlmprof.metrics.aggregate import per_image_table
from vlmprof.metrics.document import MetricsDocument
from vlmprof.records import read_records, read_run_records

STALE = "tests/data/runs/ no longer matches the code: remake it with `python -m tests.frozen_runs`"
RUNS = sorted(CONFIGS)


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Key paths where `actual` does not hold what `expected` sets (keys it adds are fine)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [
            found
            for key, value in expected.items()
            for found in differences(value, actual.get(key), f"{path}.{key}".lstrip("."))
        ]
    return [] if expected == actual else [path]


def _records_file(name: str) -> Path:
    return frozen_run(name) / "runs" / "shard-0.jsonl"


@pytest.mark.parametrize("name", RUNS)
def test_its_metrics_read_back_exactly(name: str):
    path = frozen_run(name) / "metrics.json"
    assert MetricsDocument.read(path).to_dict() == json.loads(path.read_text()), STALE


@pytest.mark.parametrize("name", RUNS)
def test_its_records_read_back_exactly(name: str):
    path = _records_file(name)
    originals = [json.loads(line) for line in path.read_text().splitlines()]
    assert originals
    assert [record.to_dict() for record in read_run_records([path])] == originals, STALE


@pytest.mark.parametrize("name", RUNS)
def test_its_per_page_table_is_the_one_its_records_make(name: str):
    committed = pd.read_csv(
        frozen_run(name) / "tables" / "per_image.csv", index_col="image_id", dtype={"image_id": str}
    )
    made = per_image_table(read_records([_records_file(name)]))
    # The aggregation adds each page's category from the subset.
    pd.testing.assert_frame_equal(committed.drop(columns="category"), made, obj=STALE)


@pytest.mark.parametrize("name", RUNS)
def test_it_was_made_with_its_config(name: str):
    config = MetricsDocument.read(frozen_run(name) / "metrics.json").config
    assert differences(CONFIGS[name], config) == [], STALE


@pytest.mark.parametrize("name", RUNS)
def test_it_was_made_from_a_committed_tree(name: str):
    """Its metrics name the commit it ran and a clean tree (tests/data/runs/README.md)."""
    environment = MetricsDocument.read(frozen_run(name) / "metrics.json").environment
    assert environment.git_commit and environment.git_dirty is False, STALE


def test_differences_name_the_key_paths_that_differ():
    expected = {"run_name": "a", "subset": {"n": 3}, "repeats": 2}
    actual = {"run_name": "a", "subset": {"n": 4, "seed": 0}, "repeats": 2, "extra": 1}
    assert differences(expected, actual) == ["subset.n"]
    assert differences({"model": {"preset": "small"}}, {}) == ["model"]

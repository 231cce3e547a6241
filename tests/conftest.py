"""Shared fixtures: one real run of the workflow on the CPU default, reused by many tests;
the check of a test's `needs_tool` mark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.needs_tool import missing_tool
from tests.workflow_helpers import FAST_CONFIG, copy_workflow, run_workflow

# Under pytest-xdist every core runs a worker: one thread per worker (and per job it
# starts) keeps them from fighting over the cores.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `needs_tool` whose tool is missing skips (or fails, where every tool is
    required) before its fixtures run: no pipeline run for a test that cannot use it."""
    for mark in item.iter_markers("needs_tool"):
        missing_tool(*mark.args)


@pytest.fixture(scope="session")
def workflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch checkout of the workflow with a small, fast configuration."""
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.fixture(scope="session")
def pipeline_run(workflow_dir: Path) -> Path:
    """Run the whole workflow once (the CPU default, fewer pages); the run's results folder."""
    return run_workflow(workflow_dir, FAST_CONFIG)

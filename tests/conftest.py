"""Shared fixtures: one real run of the workflow on the CPU default, reused by many tests;
the check of a test's `needs_tool` mark."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.awkward_pages import AWKWARD_RUN, awkward_config, write_awkward_pages
from tests.needs_tool import missing_tool
from tests.workflow_helpers import FAST_CONFIG, copy_workflow, run_workflow

# Under pytest-xdist every core runs a worker: one thread per worker (and per job it
# starts) keeps them from fighting over the cores.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# The test files with the longest workflow runs, longest first. pytest-xdist hands each
# worker the next file in collection order (--no-loadscope-reorder in pyproject.toml): these
# start at once and the short files fill the cores around them, where a long run started
# last would leave the other cores idle until it ends. The SLURM run, which mostly waits on
# its queue, comes third: it waits while another run keeps the cores busy, not beside the
# session's first run (pipeline_run), whose jobs wait on each other.
LONGEST_FIRST = (
    "test_workflow_models.py",
    "test_workflow_throughput.py",
    "test_slurm.py",
    "test_workflow_variants.py",
    "test_report_failed_pages.py",
    "test_fault_injection.py",
    "test_workflow_hf_vlm.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """LONGEST_FIRST's files first, then the others by how many tests they hold (most first,
    as pytest-xdist orders them by default), each file's tests in their own order."""
    per_file = Counter(item.path.name for item in items)
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), -per_file[item.path.name]))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `needs_tool` whose tool is missing skips (or fails, where every tool is
    required) before its fixtures run: no pipeline run for a test that cannot use it."""
    for mark in item.iter_markers("needs_tool"):
        missing_tool(*mark.args)


def session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scratch folder every process of this pytest session shares: under pytest-xdist
    the parent of each worker's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


@contextmanager
def held(lock: Path) -> Iterator[None]:
    """Hold `lock` (a file) alone: other processes of the session wait until it is released."""
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def made_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]
) -> Path:
    """A folder of the session's shared scratch folder that `make` fills once in the whole
    session: under pytest-xdist the first worker to need it makes it and the others wait for
    it, then read it (one workflow run instead of one per worker)."""
    shared = session_folder(tmp_path_factory)
    folder, done = shared / name, shared / f"{name}.done"
    with held(shared / f"{name}.lock"):
        if not done.exists():
            if folder.exists():
                pytest.fail(f"making {folder} failed in another worker of this session")
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def workflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch checkout of the workflow with a small, fast configuration."""
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.fixture(scope="session")
def pipeline_run(workflow_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole workflow run once in the session (the CPU default, fewer pages), copied into
    this process's scratch checkout, where Snakemake finds nothing left to do; the run's
    results folder."""
    finished = made_once(
        tmp_path_factory,
        "pipeline-run",
        lambda folder: run_workflow(copy_workflow(folder), FAST_CONFIG),
    )
    # Modification times kept: every output stays newer than its inputs.
    shutil.copytree(finished, workflow_dir, symlinks=True, dirs_exist_ok=True)
    return workflow_dir / "results" / FAST_CONFIG["run_name"]


@pytest.fixture(scope="session")
def awkward_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole workflow run once in the session with a transformers VLM (GOT-OCR-2.0) as
    its model on a folder of pages that fail in every way a file can (tests/awkward_pages.py):
    read, never written, by the failed-pages tests and the transformers-VLM tests; the run's
    results folder."""

    def make(folder: Path) -> None:
        write_awkward_pages(folder / "pages")
        run_workflow(copy_workflow(folder), awkward_config(folder / "pages"))

    return made_once(tmp_path_factory, "awkward-run", make) / "results" / AWKWARD_RUN

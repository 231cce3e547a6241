"""The real workflow on a user's folder of pages: read, never written into; an empty folder
and synthetic pages aimed at it are refused before any job, in one line; subset.n above the
pages there is a warning naming both numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tests.workflow_helpers import copy_workflow, jobs_in_dry_run, snakemake, write_config


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("dataset-checks"))


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's pages outside the checkout: same stem twice, a nested page and a note."""
    folder = tmp_path_factory.mktemp("user") / "my pages"
    for name, colour in (("truncated.jpg", "red"), ("truncated.png", "blue"), ("s/p.png", "red")):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), colour).save(folder / name)
    (folder / "notes.txt").write_text("scanned in March")
    return folder


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _config(scratch: Path, dataset: dict, **settings: object) -> str:
    return str(write_config(scratch, {"run_name": "mine", "dataset": dataset, **settings}))


def _succeeds(scratch: Path, *args: str) -> str:
    """What a successful Snakemake run with `args` printed."""
    result = snakemake(scratch, *args, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_a_folder_without_source_is_read_and_never_written_into(scratch: Path, user_folder: Path):
    before = _contents(user_folder)
    config = _config(scratch, {"path": str(user_folder)})
    assert "synthetic_dataset" not in jobs_in_dry_run(scratch, "--configfile", config)
    assert _contents(user_folder) == before

    output = _succeeds(scratch, "--configfile", config, "--", "results/mine/inputs/subset.csv")
    assert (
        f"test-config.yaml: dataset.source: auto takes {user_folder} as a folder of images "
        "(source: folder); nothing is written there"
    ) in output
    subset = pd.read_csv(scratch / "results/mine/inputs/subset.csv")
    assert sorted(subset["image_id"]) == ["s__p.png", "truncated.jpg", "truncated.png"]
    assert set(subset["source"]) == {"folder"}
    assert _contents(user_folder) == before


def _refusal(scratch: Path, config: str) -> str:
    """The one line a dry run refuses with, checked to come before any job."""
    result = snakemake(scratch, "-n", "--configfile", config, timeout=120)
    assert result.returncode != 0
    assert "Job stats" not in result.stdout + result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines[0].startswith("Config file config/config.yaml is extended")
    assert len(lines) == 2, lines
    return lines[1]


def test_synthetic_pages_into_a_user_s_folder_are_refused(scratch: Path, user_folder: Path):
    before = _contents(user_folder)
    line = _refusal(scratch, _config(scratch, {"source": "synthetic", "path": str(user_folder)}))
    assert line.startswith(
        f"test-config.yaml: dataset.source: synthetic would write generated pages into "
        f"{user_folder}, outside resources/datasets/ and results/; set dataset.source: auto"
    )
    assert _contents(user_folder) == before


def test_an_empty_folder_is_refused_before_any_job(scratch: Path, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("pages go here")
    line = _refusal(scratch, _config(scratch, {"path": str(empty)}))
    assert line.startswith(f"test-config.yaml: dataset.path: {empty} holds no images (.png")


def test_subset_larger_than_the_folder_is_a_warning_naming_both_numbers(
    scratch: Path, user_folder: Path
):
    config = _config(scratch, {"path": str(user_folder)}, subset={"n": 20})
    output = _succeeds(scratch, "-n", "--configfile", config)
    assert (
        f"test-config.yaml: subset.n: 20 is more than the 3 pages in {user_folder}; "
        "all 3 are profiled"
    ) in output

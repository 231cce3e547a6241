"""dataset.source resolution: what `auto` makes of a path, and the refusals that keep generated
pages out of a user's folder; page counts and the subset.n warning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from vlmprof.data.source import (
    DatasetSource,
    DatasetSourceError,
    count_pages,
    resolve_source,
    subset_warning,
)
from vlmprof.data.synthetic_pages import generate_synthetic_pages, is_generated_page


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), "white").save(path)
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three generated pages and their manifest, made once."""
    folder = tmp_path_factory.mktemp("generated")
    generate_synthetic_pages(folder, n_pages=3)
    return folder


@pytest.fixture
def project(tmp_path: Path, generated: Path) -> Path:
    """A project folder with generated pages in resources/datasets/synthetic."""
    shutil.copytree(generated, tmp_path / "resources/datasets/synthetic")
    return tmp_path


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    """A user's folder of pages outside the project."""
    folder = tmp_path / "elsewhere" / "my pages"
    _image(folder / "scan.jpg")
    _image(folder / "nested" / "scan.png")
    return folder


def test_generated_page_names_are_recognised(project: Path) -> None:
    written = sorted(p.name for p in (project / "resources/datasets/synthetic").glob("*.png"))
    assert len(written) == 3 and all(is_generated_page(name) for name in written)
    for name in ("page_001_text_heavy.jpg", "page_1_text_heavy.png", "scan.png", "page_001.png"):
        assert not is_generated_page(name), name


def test_auto_reads_a_folder_of_images_as_folder(project: Path, user_folder: Path) -> None:
    resolved = resolve_source("auto", str(user_folder), project)
    assert resolved.source == "folder"
    assert resolved.note == (
        f"dataset.source: auto takes {user_folder} as a folder of images (source: folder); "
        "nothing is written there"
    )


def test_auto_reads_a_json_file_as_omnidocbench(project: Path) -> None:
    bench = project / "bench" / "OmniDocBench.JSON"
    bench.parent.mkdir()
    bench.write_text("[]")
    resolved = resolve_source("auto", "bench/OmniDocBench.JSON", project)
    assert resolved.source == "omnidocbench"
    assert "auto takes bench/OmniDocBench.JSON as an OmniDocBench JSON file" in resolved.note


@pytest.mark.parametrize(
    "path",
    [
        "resources/datasets/synthetic",  # the default, already generated
        "resources/datasets/fresh",  # not there yet
        "results/run/pages",
    ],
)
def test_auto_generates_synthetic_pages_only_in_the_project_s_own_places(
    project: Path, path: str
) -> None:
    assert resolve_source("auto", path, project) == DatasetSource("synthetic")
    absolute = str(project / path)
    assert resolve_source("auto", absolute, project) == DatasetSource("synthetic")


def test_auto_takes_a_generated_folder_with_a_user_s_image_as_folder(project: Path) -> None:
    _image(project / "resources/datasets/synthetic" / "mine.png")
    assert resolve_source("auto", "resources/datasets/synthetic", project).source == "folder"
    with pytest.raises(DatasetSourceError, match=r"beside the images in .*\(e\.g\. mine\.png\)"):
        resolve_source("synthetic", "resources/datasets/synthetic", project)


def test_auto_refuses_what_it_cannot_read(project: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("no pages")
    cases = {
        str(tmp_path / "absent"): "does not exist; point it at a folder of images",
        str(tmp_path / "empty"): "holds no images",
        str(tmp_path / "notes.txt"): "is neither a folder of images nor an OmniDocBench .json",
    }
    for path, reason in cases.items():
        with pytest.raises(DatasetSourceError) as caught:
            resolve_source("auto", path, project)
        assert str(caught.value) == str(caught.value).splitlines()[0]
        assert str(caught.value).startswith(f"dataset.path: {path} {reason}")
        assert caught.value.key == "dataset.path"


def test_explicit_synthetic_outside_the_project_s_places_is_refused(
    project: Path, user_folder: Path, tmp_path: Path
) -> None:
    for path in (str(user_folder), str(tmp_path / "new"), "resources/other", "../results"):
        with pytest.raises(DatasetSourceError) as caught:
            resolve_source("synthetic", path, project)
        message = str(caught.value)
        assert caught.value.key == "dataset.source" and "\n" not in message
        prefix = f"dataset.source: synthetic would write generated pages into {path},"
        assert message.startswith(prefix)
        assert "set dataset.source: auto (or folder)" in message
    assert not (tmp_path / "new").exists()


def test_explicit_synthetic_in_the_project_s_places_is_kept(project: Path) -> None:
    for path in ("resources/datasets/synthetic", "resources/datasets/new", "results/x"):
        assert resolve_source("synthetic", path, project) == DatasetSource("synthetic")
    (project / "resources/datasets/file.csv").write_text("x")
    with pytest.raises(DatasetSourceError, match=r"file\.csv is a file"):
        resolve_source("synthetic", "resources/datasets/file.csv", project)


def test_folder_source_refuses_an_empty_or_missing_folder(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.md").write_text("no pages")
    _image(empty / ".hidden" / "x.png")
    with pytest.raises(DatasetSourceError, match=rf"^dataset\.path: {empty} holds no images"):
        resolve_source("folder", str(empty), project)
    with pytest.raises(DatasetSourceError, match=r"gone does not exist"):
        resolve_source("folder", str(tmp_path / "gone"), project)
    with pytest.raises(DatasetSourceError, match=r"readme\.md is not a folder"):
        resolve_source("folder", str(empty / "readme.md"), project)
    _image(empty / "sub" / "page.tif")
    assert resolve_source("folder", str(empty), project) == DatasetSource("folder")


def test_pages_are_counted_without_opening_them(user_folder: Path, tmp_path: Path) -> None:
    (user_folder / "not-an-image.png").write_bytes(b"junk")  # counted: the job reports it
    assert count_pages("folder", user_folder, 24) == 3
    assert count_pages("synthetic", "resources/datasets/synthetic", 24) == 24
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps([{"page_info": {"image_path": f"{i}.png"}} for i in range(5)]))
    assert count_pages("omnidocbench", bench, 24) == 5
    bench.write_text("{broken")
    assert count_pages("omnidocbench", bench, 24) is None


def test_subset_warning_names_both_numbers() -> None:
    assert subset_warning(30, 12, "/data/pages") == (
        "subset.n: 30 is more than the 12 pages in /data/pages; all 12 are profiled"
    )
    assert subset_warning(12, 12, "/data/pages") is None
    assert subset_warning(30, None, "/data/pages") is None

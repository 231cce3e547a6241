"""Which kind of data set `dataset.path` is, decided once before any job.

`dataset.source: auto` reads the path: a folder holding images is a folder data set, a
`.json` file an OmniDocBench-style one, and a place of the project's own (under
resources/datasets/ or results/) holding no images but generated pages gets synthetic pages.
Generated pages are written only there, so a user's folder is never written into.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vlmprof.data.manifest import image_files, no_images_message
from vlmprof.data.synthetic_pages import is_generated_page

GENERATED_ROOTS = ("resources/datasets", "results")


class DatasetSourceError(ValueError):
    """dataset.source and dataset.path do not fit together; the message says what to set."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class DatasetSource:
    """The source a run uses, and how `auto` was understood when it is not synthetic."""

    source: str
    note: str | None = None


def resolve_source(source: str, path: str, project: Path) -> DatasetSource:
    """The source for `dataset.source` and `dataset.path` (relative to `project`).

    Raises DatasetSourceError, before any job, for a path that does not exist or holds no
    images, and for synthetic pages that would be written outside the project's own places
    or beside images they did not generate.
    """
    location = Path(project) / path
    if source == "auto":
        return _auto(path, location, project)
    if source == "synthetic":
        _check_synthetic_target(path, location, project)
        return DatasetSource("synthetic")
    if not location.exists():
        raise DatasetSourceError("dataset.path", _missing(path))
    if source == "folder" and not location.is_dir():
        raise DatasetSourceError(
            "dataset.path", f"dataset.path: {path} is not a folder; point it at a folder of images"
        )
    if source == "folder" and not image_files(location):
        raise DatasetSourceError("dataset.path", no_images_message(Path(path)))
    return DatasetSource(source)


def is_generated_location(location: Path, project: Path) -> bool:
    """Whether `location` lies under the project's resources/datasets/ or results/."""
    resolved = (Path(project) / location).resolve()
    return any(resolved.is_relative_to((Path(project) / r).resolve()) for r in GENERATED_ROOTS)


def user_images(folder: Path) -> list[Path]:
    """Images in `folder` that synthetic generation did not write (by their file names)."""
    return [
        p for p in image_files(folder) if not (p.parent == folder and is_generated_page(p.name))
    ]


def count_pages(source: str, path: str | Path, synthetic_pages: int) -> int | None:
    """Pages the data set at `path` offers, counted without opening an image; None if unknown.

    A folder's images by extension, an OmniDocBench file's entries, `synthetic_pages` pages.
    """
    if source == "synthetic":
        return synthetic_pages
    if source == "folder":
        return len(image_files(Path(path)))
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # the subset job reports an unreadable file in full
        return None
    return len(entries) if isinstance(entries, list) else None


def subset_warning(n: int, pages: int | None, path: str) -> str | None:
    """The warning for `subset.n` above the pages the data set offers, else None."""
    if pages is None or n <= pages:
        return None
    return f"subset.n: {n} is more than the {pages} pages in {path}; all {pages} are profiled"


def _auto(path: str, location: Path, project: Path) -> DatasetSource:
    """What `auto` makes of `location`: omnidocbench, folder or synthetic, else an error."""
    if location.is_file() and location.suffix.lower() == ".json":
        return DatasetSource(
            "omnidocbench",
            f"dataset.source: auto takes {path} as an OmniDocBench JSON file "
            "(source: omnidocbench)",
        )
    ours = is_generated_location(location, project)
    if location.is_dir() and (user_images(location) or (image_files(location) and not ours)):
        return DatasetSource(
            "folder",
            f"dataset.source: auto takes {path} as a folder of images (source: folder); "
            "nothing is written there",
        )
    if ours and not location.is_file():
        return DatasetSource("synthetic")
    if not location.exists():
        raise DatasetSourceError("dataset.path", _missing(path))
    if location.is_dir():
        raise DatasetSourceError("dataset.path", no_images_message(Path(path)))
    raise DatasetSourceError(
        "dataset.path",
        f"dataset.path: {path} is neither a folder of images nor an OmniDocBench .json file; "
        "point it at one",
    )


def _check_synthetic_target(path: str, location: Path, project: Path) -> None:
    """Refuse generated pages outside the project's places or beside a user's images."""
    if not is_generated_location(location, project):
        raise DatasetSourceError(
            "dataset.source",
            f"dataset.source: synthetic would write generated pages into {path}, outside "
            f"{' and '.join(r + '/' for r in GENERATED_ROOTS)}; set dataset.source: auto (or "
            "folder) to profile the images there, or point dataset.path under "
            f"{GENERATED_ROOTS[0]}/",
        )
    if location.exists() and not location.is_dir():
        raise DatasetSourceError(
            "dataset.source",
            f"dataset.source: synthetic writes pages into a folder, and {path} is a file; "
            "set dataset.source: auto to read it, or point dataset.path at a folder",
        )
    found = user_images(location) if location.is_dir() else []
    if found:
        raise DatasetSourceError(
            "dataset.source",
            f"dataset.source: synthetic would write generated pages beside the images in "
            f"{path} (e.g. {found[0].name}); set dataset.source: auto (or folder) to profile "
            f"them, or point dataset.path at a new folder under {GENERATED_ROOTS[0]}/",
        )


def _missing(path: str) -> str:
    return (
        f"dataset.path: {path} does not exist; point it at a folder of images "
        "(source: folder) or an OmniDocBench JSON file (source: omnidocbench)"
    )

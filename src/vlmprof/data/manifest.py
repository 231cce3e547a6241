"""Dataset manifests: one row per page image, whatever the data set's own layout.

A manifest is a table with `MANIFEST_COLUMNS` (extra columns such as OmniDocBench's page
attributes ride along, and `text`, a page's ground truth, where the source has one). On
disk, paths are relative to the manifest's folder so a data set can move; in memory they are
absolute. Unreadable images keep their row (width and height
empty) so the profiling job records the error instead of silently dropping the page.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pandas as pd
from PIL import Image

from vlmprof.atomic import atomic_open

MANIFEST_COLUMNS = ("image_id", "path", "category", "width", "height", "sha256", "source")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
SOURCES = ("synthetic", "folder", "omnidocbench")
# A page's ground-truth text: OmniDocBench's annotations, or what a synthetic page was drawn
# from. A folder of images has none.
TEXT_COLUMN = "text"
SOURCES_WITH_TEXT = ("synthetic", "omnidocbench")
_TEXT_COLUMNS = ("image_id", "path", "category", "sha256", "source")


def load_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a manifest CSV and resolve its paths against the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest {path}: file does not exist; write one with write_manifest")
    try:
        frame = pd.read_csv(path, dtype={column: "string" for column in _TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).replace("\n", " ")
        raise ValueError(f"manifest {path}: not a readable CSV ({reason})") from exc
    missing = [column for column in MANIFEST_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"manifest {path}: missing column {missing[0]!r}; "
            f"expected columns: {', '.join(MANIFEST_COLUMNS)}"
        )
    if frame.empty:
        raise ValueError(f"manifest {path}: has no rows; list at least one image")
    for column in ("image_id", "path"):
        if frame[column].isna().any():
            row = int(frame.index[frame[column].isna()][0]) + 1
            raise ValueError(f"manifest {path}: data row {row} has an empty {column}; fill it in")
    duplicated = frame["image_id"][frame["image_id"].duplicated()]
    if not duplicated.empty:
        raise ValueError(
            f"manifest {path}: image_id {duplicated.iloc[0]!r} appears more than once; "
            "image ids must be unique"
        )
    folder = path.resolve().parent
    frame["path"] = [str(folder / p) for p in frame["path"]]
    return _typed(frame)


def write_manifest(manifest: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write `manifest` as CSV atomically, with paths under its folder made relative."""
    path = Path(path)
    folder = path.resolve().parent
    frame = manifest.copy()
    frame["path"] = [_relative_if_under(Path(p), folder) for p in frame["path"]]
    with atomic_open(path) as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")


def manifest_from_folder(folder: Path, category: str = "uncategorised") -> pd.DataFrame:
    """A manifest of every image under `folder` (recursive, sorted, hidden entries skipped).

    The image id is the path relative to `folder`, extension included ('/' becomes '__'),
    made unique with a numeric suffix before the extension where '__' makes two alike.
    """
    folder = Path(folder)
    _require_exists(folder, "a folder of page images")
    if not folder.is_dir():
        raise ValueError(f"dataset.path: {folder} is not a folder; point it at a folder of images")
    files = image_files(folder)
    if not files:
        raise ValueError(no_images_message(folder))
    ids = _unique_ids(p.relative_to(folder).as_posix() for p in files)
    rows = []
    for image_id, file in zip(ids, files, strict=True):
        width, height = _header_size(file)
        rows.append(
            {
                "image_id": image_id,
                "path": str(file.resolve()),
                "category": category,
                "width": width,
                "height": height,
                "sha256": _sha256(file),
                "source": "folder",
            }
        )
    return _typed(pd.DataFrame(rows))


def manifest_from_omnidocbench(json_path: Path, image_root: Path) -> pd.DataFrame:
    """A manifest from an OmniDocBench-style JSON list of pages.

    Each entry needs `page_info.image_path` (relative to `image_root`); `page_info.width`
    and `height` are used when present, else read from the image header. The category is
    `page_attribute.data_source`; the other page attributes become `attr_<name>` columns,
    and the ground truth of its `layout_dets` the `text` column (`ground_truth_text`).
    """
    json_path, image_root = Path(json_path), Path(image_root)
    _require_exists(json_path, "an OmniDocBench-style JSON file")
    _require_exists(image_root, "the folder holding the JSON's page images", key="image_root")
    try:
        entries = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"dataset.path: {json_path} is not valid JSON ({exc})") from exc
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"dataset.path: {json_path} must hold a non-empty JSON list of pages")
    rows = []
    for index, entry in enumerate(entries):
        page_info = entry.get("page_info") if isinstance(entry, dict) else None
        image_path = page_info.get("image_path") if isinstance(page_info, dict) else None
        if not isinstance(image_path, str) or not image_path:
            raise ValueError(
                f"dataset.path: {json_path} entry {index} has no page_info.image_path; "
                "is this an OmniDocBench-style file?"
            )
        file = image_root / image_path
        attributes = page_info.get("page_attribute") or {}
        width, height = page_info.get("width"), page_info.get("height")
        if (width is None or height is None) and file.is_file():
            width, height = _header_size(file)
        row = {
            "image_path": image_path,
            "path": str(file.resolve()),
            "category": str(attributes.get("data_source") or "uncategorised"),
            "width": width,
            "height": height,
            "sha256": _sha256(file) if file.is_file() else None,
            "source": "omnidocbench",
            TEXT_COLUMN: ground_truth_text(entry.get("layout_dets")),
        }
        row.update({f"attr_{k}": v for k, v in attributes.items() if k != "data_source"})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame["sha256"].isna().all():
        raise ValueError(
            f"dataset.image_root: none of the {len(frame)} images listed in {json_path} exist "
            f"under {image_root}; point it at the folder holding them"
        )
    frame.insert(
        0,
        "image_id",
        _unique_ids(Path(p).as_posix() for p in frame.pop("image_path")),
    )
    return _typed(frame)


def ground_truth_text(elements: object) -> str:
    """A page's ground truth from OmniDocBench's `layout_dets`: every element not marked
    `ignore`, in reading order (`order`; unordered ones last), as the text a page's
    transcription holds: a table's HTML, a formula's LaTeX, else its text (figures have
    none); elements apart by a blank line."""
    if not isinstance(elements, list):
        return ""
    kept = [e for e in elements if isinstance(e, dict) and not e.get("ignore")]
    kept.sort(key=lambda e: (e.get("order") is None, e.get("order") or 0))
    parts = (e.get("html") or e.get("latex") or e.get("text") or "" for e in kept)
    return "\n\n".join(part for part in parts if isinstance(part, str) and part)


def image_files(folder: Path) -> list[Path]:
    """Every image file under `folder` by extension (recursive, sorted, hidden entries skipped).

    A directory listing only: nothing is opened, so it is cheap enough to plan a run with.
    """
    folder = Path(folder)
    return sorted(
        (
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        ),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def no_images_message(folder: Path) -> str:
    """The configuration error for a folder without a single image."""
    return (
        f"dataset.path: {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
        "add images or point it at another folder"
    )


def build_manifest(source: str, path: str, image_root: str | None = None) -> pd.DataFrame:
    """The manifest of the configured data set (`dataset.source`, `.path`, `.image_root`).

    `synthetic`: a folder made by `generate_synthetic_pages` (or its manifest.csv);
    `folder`: any folder of images; `omnidocbench`: the JSON file, with images under
    `image_root` (default: an `images` folder beside the JSON, else the JSON's folder).
    """
    if source not in SOURCES:
        raise ValueError(f"dataset.source: unknown {source!r}; allowed: {', '.join(SOURCES)}")
    location = Path(path)
    if source == "synthetic":
        manifest_path = location / "manifest.csv" if location.is_dir() else location
        _require_exists(manifest_path, "the folder written by generate_synthetic_pages")
        return load_manifest(manifest_path)
    if source == "folder":
        return manifest_from_folder(location)
    if image_root is None:
        beside = location.parent / "images"
        root = beside if beside.is_dir() else location.parent
    else:
        root = Path(image_root)
    return manifest_from_omnidocbench(location, root)


def duplicate_groups(manifest: pd.DataFrame) -> list[list[str]]:
    """Image ids that share a sha256 (groups of two or more, in manifest order)."""
    known = manifest.dropna(subset=["sha256"])
    groups = known.groupby("sha256", sort=False)["image_id"].agg(list)
    return [list(ids) for ids in groups if len(ids) > 1]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Manifest columns first, text as strings and sizes as nullable integers."""
    for column in _TEXT_COLUMNS:
        frame[column] = frame[column].astype("string")
    if TEXT_COLUMN in frame.columns:
        frame[TEXT_COLUMN] = frame[TEXT_COLUMN].astype("string").fillna("")
    for column in ("width", "height"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    extra = [column for column in frame.columns if column not in MANIFEST_COLUMNS]
    return frame[[*MANIFEST_COLUMNS, *extra]].reset_index(drop=True)


def _require_exists(path: Path, what: str, key: str = "path") -> None:
    """Raise the configuration error for a missing dataset path."""
    if not path.exists():
        raise ValueError(f"dataset.{key}: {path} does not exist; point it at {what}")


def _header_size(file: Path) -> tuple[int | None, int | None]:
    """Width and height from the image header (no pixel decoding), or None when unreadable."""
    try:
        with warnings.catch_warnings():
            # Size is all we want here; the loader applies the pixel limit when it decodes.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                return image.size
    except Exception:  # decoders raise many types on bad headers; the loader reports them
        return None, None


def _sha256(file: Path) -> str | None:
    """Hex sha256 of the file's bytes, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _unique_ids(paths: Iterable[str]) -> list[str]:
    """Ids from relative paths ('/' to '__'), '-2', '-3'... before the extension of repeats.

    Ids name files (operator traces), so they hold no '/'; they keep the extension so that
    `a.jpg` and `a.png` stay apart and recognisable.
    """
    seen: set[str] = set()
    ids = []
    for path in paths:
        base = path.replace("/", "__")
        suffix = PurePosixPath(base).suffix
        stem = base.removesuffix(suffix)
        candidate, n = base, 1
        while candidate in seen:
            n += 1
            candidate = f"{stem}-{n}{suffix}"
        seen.add(candidate)
        ids.append(candidate)
    return ids


def _relative_if_under(path: Path, folder: Path) -> str:
    """`path` relative to `folder` (POSIX separators) when inside it, else absolute."""
    absolute = path.resolve()
    if absolute.is_relative_to(folder):
        return absolute.relative_to(folder).as_posix()
    return str(absolute)

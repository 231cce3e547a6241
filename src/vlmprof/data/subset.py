"""The subset of a manifest that a run profiles: stratified by category, or an explicit list.

Stratification keeps small runs representative (every category appears before any appears
twice); a fixed seed keeps reruns on the same pages, so timings stay comparable. The
subset is then split: which pages each timing shard gets, which the operator pass loads.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image

from vlmprof.atomic import atomic_open
from vlmprof.data.image_loader import ImageLoadError, load_page
from vlmprof.data.manifest import TEXT_COLUMN


def select_subset(
    manifest: pd.DataFrame, n: int = 12, seed: int = 0, list_file: Path | None = None
) -> pd.DataFrame:
    """`n` rows of `manifest`, round-robin over categories (sorted), shuffled within each.

    Each category's shuffle depends only on `seed` and the category's name, so adding a
    category elsewhere does not change which pages another category contributes. With
    `list_file`, exactly the listed pages are returned in file order and `n` is ignored.
    Rows come back in selection order, so any prefix is itself balanced; rows without a
    category count as "uncategorised".
    """
    if list_file is not None:
        return _from_list(manifest, Path(list_file))
    if n < 1:
        raise ValueError(f"subset.n: {n} must be at least 1")
    categories = manifest["category"].astype("string").fillna("uncategorised")
    queues = []
    for category in sorted(categories.unique()):
        ids = manifest.loc[categories == category, "image_id"].sort_values()
        rng = np.random.default_rng([seed, zlib.crc32(category.encode("utf-8"))])
        queues.append(list(rng.permutation(ids.index.to_numpy())))
    picked: list[int] = []
    while len(picked) < n and any(queues):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return manifest.loc[picked].reset_index(drop=True)


def write_subset(subset: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write the subset table as CSV atomically (absolute paths, readable by load_manifest)."""
    with atomic_open(path) as handle:
        subset.to_csv(handle, index=False, lineterminator="\n")


def shard_pages(subset: pd.DataFrame, shard: int, shards: int) -> list[tuple[str, Path]]:
    """(image_id, path) of the pages timing shard `shard` of `shards` profiles.

    Every `shards`-th page from the `shard`-th: the subset is in selection order (balanced
    over categories), so each shard gets a balanced share and the shards cover it once.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}: a shard is numbered 0 to shards - 1")
    mine = subset.iloc[shard::shards]
    return list(zip(mine["image_id"], mine["path"].map(Path), strict=True))


def first_pages(subset: pd.DataFrame, count: int | None) -> set[str]:
    """The image_ids of the subset's first `count` pages in selection order (balanced over
    categories), every page when `count` is None: the pages an arm with a `pages` setting
    profiles, and the correctness gate's sample (`variant_gate.pages`)."""
    ids = subset["image_id"].astype(str)
    return set(ids if count is None else ids.iloc[:count])


def page_texts(subset: pd.DataFrame) -> dict[str, str]:
    """Each subset page's ground-truth text by image id (`manifest.TEXT_COLUMN`); a subset
    without one (a folder of images, or a manifest made before pages kept their text) is a
    ValueError saying what to do."""
    if TEXT_COLUMN not in subset.columns:
        raise ValueError(
            "output_length.kind: dataset: the subset has no ground-truth text column; its "
            "manifest was made before pages kept their text: delete the data set's "
            "manifest.csv (synthetic pages) and rerun, or use output_length.kind: lognormal"
        )
    texts = subset[TEXT_COLUMN].astype("string").fillna("")
    return dict(zip(subset["image_id"], texts, strict=True))


def readable_pages(
    subset: pd.DataFrame, count: int, max_pixels: int
) -> list[tuple[str, Image.Image]]:
    """The first `count` pages of the subset that load, as (image_id, RGB page); unreadable
    pages are skipped (the timing pass records them as errors)."""
    pages: list[tuple[str, Image.Image]] = []
    for image_id, path in shard_pages(subset, 0, 1):
        if len(pages) == count:
            break
        try:
            pages.append((image_id, load_page(path, max_pixels)))
        except ImageLoadError:
            continue
    return pages


def page_sizes(subset: pd.DataFrame) -> list[tuple[int, int]]:
    """(width, height) of every subset page whose size the manifest knows."""
    sized = subset.dropna(subset=["width", "height"])
    return list(zip(sized["width"].astype(int), sized["height"].astype(int), strict=True))


def read_list_file(list_file: Path) -> list[str]:
    """Entries of a subset list: one image id or path per line; blank lines and '#' skipped."""
    if not list_file.is_file():
        raise ValueError(f"subset.list_file: {list_file} does not exist; point it at a text file")
    lines = list_file.read_text(encoding="utf-8").splitlines()
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not entries:
        raise ValueError(f"subset.list_file: {list_file} lists no images; add one per line")
    return entries


def _from_list(manifest: pd.DataFrame, list_file: Path) -> pd.DataFrame:
    """Rows named by `list_file`, in its order; each entry must match exactly one row.

    An entry is an image id, a path, or an id without its extension (as ids were once
    written) where that names one image only.
    """
    by_id = {image_id: index for index, image_id in manifest["image_id"].items()}
    paths = {index: Path(p).as_posix() for index, p in manifest["path"].items()}
    stems = {index: _without_extension(image_id) for image_id, index in by_id.items()}
    picked: list[int] = []
    for entry in read_list_file(list_file):
        index = by_id.get(entry)
        if index is None:
            index = _match_path(entry, paths, stems, list_file)
        if index in picked:
            raise ValueError(
                f"subset.list_file: {list_file} names {entry!r} twice; list each image once"
            )
        picked.append(index)
    return manifest.loc[picked].reset_index(drop=True)


def _match_path(entry: str, paths: dict[int, str], stems: dict[int, str], list_file: Path) -> int:
    """The row whose path is `entry` (absolute, relative to the list file, or a path suffix),
    else whose image id without its extension is `entry`."""
    candidate = Path(entry) if Path(entry).is_absolute() else list_file.parent / entry
    exact = candidate.resolve().as_posix()
    suffix = "/" + Path(entry).as_posix()
    matches = [i for i, p in paths.items() if p == exact]
    matches = matches or [i for i, p in paths.items() if p.endswith(suffix)]
    matches = matches or [i for i, stem in stems.items() if stem == entry]
    if not matches:
        raise ValueError(
            f"subset.list_file: {list_file} names {entry!r}, which is no image id or path "
            "in the manifest; fix or remove that line"
        )
    if len(matches) > 1:
        raise ValueError(
            f"subset.list_file: {list_file} entry {entry!r} matches {len(matches)} images; "
            "use the image id instead"
        )
    return matches[0]


def _without_extension(image_id: str) -> str:
    """`a.png` -> `a`; an id without an extension stays as it is."""
    return image_id.removesuffix(PurePosixPath(image_id).suffix)

"""Jobs of the dataset step: the synthetic pages and the subset a run profiles."""

from __future__ import annotations

from pathlib import Path

from vlmprof.data.manifest import build_manifest
from vlmprof.data.subset import select_subset as pick_subset
from vlmprof.data.subset import write_subset
from vlmprof.data.synthetic_pages import generate_synthetic_pages


def synthetic_dataset(manifest: str, *, n_pages: int, seed: int) -> None:
    """Generate the embedded default's document pages beside their `manifest`."""
    generate_synthetic_pages(Path(manifest).parent, n_pages, seed)


def select_subset(
    dataset: str,
    subset: str,
    *,
    source: str,
    image_root: str | None,
    n: int,
    seed: int,
    list_file: str | None,
) -> None:
    """Build the dataset's manifest and write the pages this run profiles to `subset`."""
    manifest = build_manifest(source, dataset, image_root)
    chosen = pick_subset(manifest, n, seed, Path(list_file) if list_file else None)
    write_subset(chosen, Path(subset))

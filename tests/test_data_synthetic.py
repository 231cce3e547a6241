"""Synthetic page generator: determinism, balance, real page sizes and distinct layouts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vlmprof.data.manifest import MANIFEST_COLUMNS, TEXT_COLUMN, load_manifest
from vlmprof.data.synthetic_pages import CATEGORIES, PAGE_SIZES, generate_synthetic_pages
from vlmprof.models.deepseek_ocr.views import plan_views


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The default 24-page set, generated once for the module."""
    manifest_path = generate_synthetic_pages(tmp_path_factory.mktemp("synthetic"))
    return manifest_path, load_manifest(manifest_path)


def test_manifest_columns_and_relative_paths(pages: tuple[Path, pd.DataFrame]) -> None:
    manifest_path, manifest = pages
    raw = pd.read_csv(manifest_path)
    assert tuple(raw.columns) == (*MANIFEST_COLUMNS, TEXT_COLUMN)
    assert not any(Path(p).is_absolute() for p in raw["path"])
    assert manifest["path"].map(lambda p: Path(p).is_absolute() and Path(p).is_file()).all()
    assert (manifest["source"] == "synthetic").all()
    assert manifest["image_id"].is_unique


def test_categories_are_balanced(pages: tuple[Path, pd.DataFrame]) -> None:
    counts = pages[1]["category"].value_counts()
    assert sorted(counts.index) == sorted(CATEGORIES)
    assert set(counts) == {8}


def test_every_page_size_appears_and_matches_the_file(pages: tuple[Path, pd.DataFrame]) -> None:
    manifest = pages[1]
    sizes = set(zip(manifest["width"], manifest["height"], strict=True))
    assert sizes == {(s.width, s.height) for s in PAGE_SIZES}
    for row in manifest.itertuples():
        data = Path(row.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256
        with Image.open(row.path) as image:
            assert image.size == (row.width, row.height)
            assert image.mode == "RGB"


def test_pages_exercise_both_tiled_and_untiled_views(pages: tuple[Path, pd.DataFrame]) -> None:
    crops = [plan_views(w, h, "gundam").n_crops for w, h in pages[1][["width", "height"]].values]
    assert min(crops) == 0
    assert max(crops) > 0
    assert len(set(crops)) >= 3


def test_layouts_differ_by_category(pages: tuple[Path, pd.DataFrame]) -> None:
    """Image-rich pages carry colour; mixed pages carry ruled tables; text pages neither."""
    for row in pages[1].itertuples():
        with Image.open(row.path) as image:
            saturation = np.asarray(image.reduce(2).convert("HSV"))[..., 1]
            dark = np.asarray(image.convert("L")) < 80
        coloured = float((saturation > 60).mean())
        ruled_rows = int((dark.mean(axis=1) > 0.5).sum())
        assert dark.mean() > 0.005, f"{row.image_id} is almost blank"
        if row.category == "image_rich":
            assert coloured > 0.05, row.image_id
        else:
            assert coloured < 0.01, row.image_id
        if row.category == "mixed_layout":
            assert ruled_rows >= 3, row.image_id
        if row.category == "text_heavy":
            assert ruled_rows == 0, row.image_id


def test_same_seed_gives_identical_files_and_other_seeds_differ(tmp_path: Path) -> None:
    first = load_manifest(generate_synthetic_pages(tmp_path / "a", n_pages=6, seed=3))
    second = load_manifest(generate_synthetic_pages(tmp_path / "b", n_pages=6, seed=3))
    other = load_manifest(generate_synthetic_pages(tmp_path / "c", n_pages=6, seed=4))
    assert list(first["sha256"]) == list(second["sha256"])
    assert list(first["image_id"]) == list(other["image_id"])
    assert not set(first["sha256"]) & set(other["sha256"])


def test_rejects_non_positive_page_count(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_pages"):
        generate_synthetic_pages(tmp_path, n_pages=0)

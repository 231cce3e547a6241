"""The input-set grid on pages that cannot be drawn, and alt text of the report's figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tests.awkward_pages import MAX_PIXELS, write_awkward_pages
from vlmprof.report import figures, inputs
from vlmprof.report.alt_text import alt_text


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs") / "pages"
    write_awkward_pages(folder)
    return folder


def _subset(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A subset of every file in `folder` and input facts with unknown sizes and crops."""
    files = sorted(folder.iterdir())
    subset = pd.DataFrame({"image_id": [f.stem for f in files], "path": [str(f) for f in files]})
    facts = pd.DataFrame(
        {
            "category": "uncategorised",
            "width (px)": float("nan"),
            "height (px)": float("nan"),
            "crops": float("nan"),
            "image tokens": float("nan"),
        },
        index=subset["image_id"],
    )
    return subset, facts


def test_thumbnail_reads_the_size_before_decoding(pages: Path):
    with pytest.raises(ValueError, match=r"2000 x 2000 = 4,000,000 pixels exceeds max_pixels"):
        inputs.thumbnail(pages / "bomb.png", max_pixels=MAX_PIXELS)
    with pytest.raises(Image.DecompressionBombError):
        inputs.thumbnail(pages / "pillow_bomb.png")
    small = inputs.thumbnail(pages / "good_text_heavy.png", size_px=64, max_pixels=MAX_PIXELS)
    assert max(small.size) == 64 and small.mode == "RGB"


def test_grid_draws_every_page_whatever_is_wrong_with_it(pages: Path):
    subset, facts = _subset(pages)
    unprofiled = {"empty": "ImageLoadError: empty file"}
    fig = inputs.thumbnail_grid(subset, facts, unprofiled, max_pixels=MAX_PIXELS)
    panels = {ax.get_title().split("\n")[0]: ax for ax in fig.axes if ax.get_title()}
    assert set(panels) == set(subset["image_id"])
    notes = {
        name: " ".join(" ".join(t.get_text() for t in ax.texts).split())  # unwrapped
        for name, ax in panels.items()
    }
    assert notes["empty"].startswith("not profiled:") and "empty file" in notes["empty"]
    assert notes["bomb"].startswith("cannot draw:") and "not decoded" in notes["bomb"]
    for name in ("notatext", "truncated", "pillow_bomb"):
        assert notes[name].startswith("cannot draw:"), name
    assert not notes["good_text_heavy"] and panels["good_text_heavy"].images
    assert "size unknown" in panels["empty"].get_title()
    assert "- crops, - image tokens" in panels["empty"].get_title()
    assert fig.get_suptitle() == f"The input set: {len(subset)} pages (1 not profiled)"


def test_caption_gives_known_sizes_in_pixels():
    facts = pd.Series(
        {"category": "book", "width (px)": 1240.0, "height (px)": 1754.0, "crops": 6.0}
    )
    assert inputs._caption("p1", facts) == "p1\nbook, 1240 x 1754 px\n6 crops, - image tokens"


def test_alt_text_names_the_figure_its_panels_and_axes():
    shares = pd.DataFrame(
        {"mean (ms)": [30.0, 70.0], "share (%)": [30.0, 70.0]}, index=["prefill", "decode"]
    )
    parts = pd.DataFrame(
        {"mean (ms)": [10.0, 20.0], "share of prefill (%)": [33.3, 66.7]}, index=["SAM", "CLIP"]
    )
    text = alt_text(figures.stage_share_figure(shares, parts))
    assert text.startswith(
        "Figure: Where a page's time goes; Page level: image load and preprocess (host)"
    )
    assert "x: share of time (%)" in text
    assert "\n" not in text

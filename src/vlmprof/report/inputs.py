"""The input set as a picture: a grid of page thumbnails with their view facts.

Paths come from inputs/subset.csv and are read relative to the folder the notebook runs in
(the workflow's root). A page that cannot be read is drawn as a box saying why; the run
records report it as a failure too.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

THUMBNAIL_PX = 320


def thumbnail(path: str | Path, size_px: int = THUMBNAIL_PX) -> Image.Image:
    """A small RGB copy of the page at `path`, its longer side `size_px`."""
    with Image.open(path) as page:
        page.draft("RGB", (size_px, size_px))
        small = page.convert("RGB")
    small.thumbnail((size_px, size_px))
    return small


def _caption(image_id: str, facts: pd.Series) -> str:
    crops = "-" if pd.isna(facts.get("crops")) else int(facts["crops"])
    tokens = "-" if pd.isna(facts.get("image tokens")) else int(facts["image tokens"])
    return (
        f"{image_id}\n{facts['category']}, {int(facts['width (px)'])} x "
        f"{int(facts['height (px)'])} px\n{crops} crops, {tokens} image tokens"
    )


def thumbnail_grid(subset: pd.DataFrame, facts: pd.DataFrame, columns: int = 4) -> Figure:
    """Thumbnails of the profiled pages with category, size (px), crops and image tokens.

    `subset` is inputs/subset.csv (image_id, path, ...); `facts` is
    `tables.input_table`, indexed by image_id.
    """
    rows = max(1, math.ceil(len(subset) / columns))
    fig = Figure(figsize=(3 * columns, 4.3 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (_, page) in zip(axes, subset.iterrows(), strict=False):
        try:
            ax.imshow(thumbnail(page["path"]))
        except OSError as error:
            ax.text(
                0.5,
                0.5,
                f"cannot read:\n{error}",
                ha="center",
                va="center",
                wrap=True,
                fontsize=8,
                transform=ax.transAxes,
            )
        ax.set_title(_caption(page["image_id"], facts.loc[page["image_id"]]), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_anchor("N")  # tops aligned, so captions line up whatever the page shape
    for ax in axes[len(subset) :]:
        ax.set_axis_off()
    fig.suptitle(f"The input set: {len(subset)} pages")
    return fig

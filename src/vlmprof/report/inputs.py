"""The input set: the profiled pages' facts as a table, and as a picture, a grid of page
thumbnails with their view facts.

Paths come from inputs/subset.csv and are read relative to the folder the notebook runs in
(the workflow's root). A page the run could not profile is drawn as a box giving the run's
reason, without opening its file again; a page too large for `dataset.max_pixels` is never
decoded; any other page that cannot be drawn is a box saying why. No page stops the grid.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from vlmprof.data.image_loader import DEFAULT_MAX_PIXELS
from vlmprof.metrics.document import MetricsDocument

THUMBNAIL_PX = 320
NOTE_CHARS = 36  # characters per line of a note, so that it stays inside its panel


def thumbnail(
    path: str | Path, size_px: int = THUMBNAIL_PX, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """A small RGB copy of the page at `path`, its longer side `size_px`.

    The size is read from the header first: a page above `max_pixels` raises ValueError
    instead of being decoded.
    """
    with warnings.catch_warnings():
        # The max_pixels check below replaces Pillow's warning; its hard error still raises.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as page:
            width, height = page.size
            if width * height > max_pixels:
                raise ValueError(
                    f"{width} x {height} = {width * height:,} pixels exceeds "
                    f"max_pixels={max_pixels:,}; not decoded"
                )
            page.draft("RGB", (size_px, size_px))
            small = page.convert("RGB")
    small.thumbnail((size_px, size_px))
    return small


def _size(facts: pd.Series) -> str:
    width, height = facts.get("width (px)"), facts.get("height (px)")
    if pd.isna(width) or pd.isna(height):
        return "size unknown"
    return f"{int(width)} x {int(height)} px"


def _count(value: object) -> str:
    return "-" if pd.isna(value) else str(int(value))


def _caption(image_id: str, facts: pd.Series) -> str:
    return (
        f"{image_id}\n{facts['category']}, {_size(facts)}\n"
        f"{_count(facts.get('crops'))} crops, {_count(facts.get('image tokens'))} image tokens"
    )


def _note(ax: Axes, text: str) -> None:
    """`text` in a box in the middle of an empty panel, wrapped to fit it."""
    lines = [textwrap.fill(line, NOTE_CHARS) for line in text.splitlines()]
    ax.text(
        0.5,
        0.5,
        "\n".join(lines),
        ha="center",
        va="center",
        fontsize=8,
        transform=ax.transAxes,
        bbox={"boxstyle": "round", "facecolor": "#f6e3e3", "edgecolor": "#c44e52"},
    )


def thumbnail_grid(
    subset: pd.DataFrame,
    facts: pd.DataFrame,
    unprofiled: Mapping[str, str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    columns: int = 4,
) -> Figure:
    """Thumbnails of the profiled pages with category, size (px), crops and image tokens.

    `subset` is inputs/subset.csv (image_id, path, ...); `facts` is `tables.input_table`,
    indexed by image_id; `unprofiled` maps the pages no record of which is ok to the
    run's reason (`tables.unprofiled_pages`); `max_pixels` is the run's `dataset.max_pixels`.
    """
    unprofiled = unprofiled or {}
    rows = max(1, math.ceil(len(subset) / columns))
    fig = Figure(figsize=(3 * columns, 4.3 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (_, page) in zip(axes, subset.iterrows(), strict=False):
        image_id = page["image_id"]
        if image_id in unprofiled:
            _note(ax, f"not profiled:\n{unprofiled[image_id]}")
        else:
            try:
                ax.imshow(thumbnail(page["path"], max_pixels=max_pixels))
            except Exception as error:  # decoders raise many types; any means "cannot draw"
                _note(ax, f"cannot draw:\n{error}")
        ax.set_title(_caption(image_id, facts.loc[image_id]), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_anchor("N")  # tops aligned, so captions line up whatever the page shape
    for ax in axes[len(subset) :]:
        ax.set_axis_off()
    failed = f" ({len(unprofiled)} not profiled)" if unprofiled else ""
    fig.suptitle(f"The input set: {len(subset)} pages{failed}")
    return fig


def input_table(metrics: MetricsDocument, subset: pd.DataFrame) -> pd.DataFrame:
    """The profiled pages: category, size, crops, image tokens and prefill length."""
    facts = pd.DataFrame(map(dataclasses.asdict, metrics.inputs)).set_index("image_id")
    table = subset.set_index("image_id")[["category", "width", "height"]].join(
        facts[["mode", "n_crops", "image_tokens", "prefill_len"]], how="left"
    )
    return table.rename(
        columns={
            "width": "width (px)",
            "height": "height (px)",
            "n_crops": "crops",
            "image_tokens": "image tokens",
            "prefill_len": "prefill length (tokens)",
        }
    )

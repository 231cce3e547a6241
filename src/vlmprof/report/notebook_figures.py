"""The figures of an executed notebook as PNG files, named by the function that drew them.

Snakemake's `--report` lists files, so each figure of the engineering report is written out
on its own (`stage_share_figure.png`, `roofline_figure.png`, ...) to appear there with a
caption, besides being embedded in the notebook's HTML page.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat

from vlmprof.atomic import atomic_open

_DRAWN_BY = re.compile(r"\b(\w+_(?:figure|grid))\(")


def extract_figures(notebook: Path, out_dir: Path) -> list[Path]:
    """Write every PNG output of `notebook` into `out_dir`; returns the files in order."""
    executed = nbformat.read(notebook, as_version=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        images = [
            o["data"]["image/png"]
            for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        drawn_by = _DRAWN_BY.findall(cell.source)
        for number, image in enumerate(images):
            name = drawn_by[number] if number < len(drawn_by) else f"cell_{index:03d}_{number}"
            path = out_dir / f"{name}.png"
            with atomic_open(path, "wb") as handle:
                handle.write(base64.b64decode(image))
            written.append(path)
    return written

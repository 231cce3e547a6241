"""A folder of page images that fail in every way a file can, beside two good pages, and the
config of the workflow run on it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image

from tests.workflow_helpers import FAST_CONFIG
from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page

GOOD_PAGES = ("text_heavy", "image_rich")
# Each unreadable file, with a phrase of the reason the timing pass gives for it.
BAD_PAGES = {
    "empty.png": "empty file",
    "notatext.jpg": "not a recognised image format",
    "truncated.png": "corrupt or truncated image data",
    "bomb.png": "exceeds max_pixels=1000000",
    "pillow_bomb.png": "decompression bomb",
}
MAX_PIXELS = 1_000_000  # the small scans stay under it, bomb.png (2000 x 2000) does not
AWKWARD_RUN = "awkward"
REPEATS = 2


def awkward_config(pages: Path) -> dict:
    """The whole workflow on the folder `pages` (source: folder): every page, two repeats,
    a few tokens, the operator pass on one page, with a transformers VLM (GOT-OCR-2.0) as
    the model, so that one run serves the failed pages' tests and the model's own."""
    return {
        **FAST_CONFIG,
        "run_name": AWKWARD_RUN,
        "model": {"name": "hf_vlm", "architecture": "got_ocr2"},
        "dataset": {"source": "folder", "path": str(pages), "max_pixels": MAX_PIXELS},
        "subset": {"n": len(GOOD_PAGES) + len(BAD_PAGES)},
        "repeats": REPEATS,
        "max_new_tokens": 3,
        "operators": {"images": 1, "top_n": 10},
    }


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_awkward_pages(folder: Path) -> None:
    """Two good small scans (good_<category>.png) and one file of each kind in BAD_PAGES."""
    folder.mkdir(parents=True)
    small = next(size for size in PAGE_SIZES if size.name == "small_scan")
    for index, category in enumerate(GOOD_PAGES):
        render_page(category, small, seed=0, index=index).save(folder / f"good_{category}.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notatext.jpg").write_text("a text file, not a page\n")
    good = (folder / f"good_{GOOD_PAGES[0]}.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    # A modest image over MAX_PIXELS, and a header alone declaring 40000 x 40000 pixels:
    # above Pillow's own decompression-bomb limit, so not even its size can be read.
    Image.new("1", (2000, 2000)).save(folder / "bomb.png")
    header = struct.pack(">IIBBBBB", 40000, 40000, 1, 0, 0, 0, 0)
    (folder / "pillow_bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b"")
    )

"""Deterministic synthetic document pages for profiling without a downloaded data set.

Three balanced categories (`text_heavy`, `mixed_layout`, `image_rich`) on real page sizes
(A4 and US Letter at print resolutions, slides, receipts, small scans), so image-token counts
and the crop tiling vary the way they do on real documents. Pillow and numpy only; the same
seed gives byte-identical PNG files. The manifest keeps the text each page was drawn from,
its ground truth (`output_length: dataset` reads it).
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont, features

from vlmprof.atomic import atomic_open
from vlmprof.data.manifest import TEXT_COLUMN, write_manifest

CATEGORIES = ("text_heavy", "mixed_layout", "image_rich")
PNG_COMPRESS_LEVEL = 3  # fast to write; pages are mostly flat colour so files stay small
_GENERATED_NAME = re.compile(rf"page_\d{{3,}}_(?:{'|'.join(CATEGORIES)})\.png")


@dataclass(frozen=True)
class PageSize:
    """A page format in pixels with the body text height that suits it."""

    name: str
    width: int
    height: int
    body_px: int


PAGE_SIZES = (
    PageSize("a4_150dpi", 1240, 1754, 20),
    PageSize("a4_200dpi", 1654, 2339, 27),
    PageSize("letter_150dpi", 1275, 1650, 20),
    PageSize("slide_16x9", 1600, 900, 26),
    PageSize("receipt", 600, 2000, 18),
    PageSize("small_scan", 480, 640, 12),
)

# Latin-looking syllables make pseudo-words with realistic lengths and glyph mixes.
_SYLLABLE_TEXT = (
    "ta re mi on la ver sti con pro ex ing al de ment com tion ra lo vi sa ne "
    "ul ter am bi per for mat ic es do gra phy sys dat ob ser que"
)
SYLLABLES = tuple(_SYLLABLE_TEXT.split())
INK = (25, 25, 30)
PAPER = ((255, 255, 255), (252, 250, 245), (248, 248, 250))
PALETTE = ((52, 101, 164), (204, 85, 60), (78, 154, 6), (117, 80, 123), (193, 125, 17))


def generate_synthetic_pages(out_dir: Path, n_pages: int = 24, seed: int = 0) -> Path:
    """Write `n_pages` page PNGs and `manifest.csv` into `out_dir`; return the manifest path.

    Page i has category `CATEGORIES[i % 3]`; its size cycles so that any six consecutive
    pages cover every page size and 18 pages cover every (category, size) pair.
    """
    if n_pages < 1:
        raise ValueError(f"n_pages: {n_pages} must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(n_pages):
        category = CATEGORIES[index % len(CATEGORIES)]
        size = PAGE_SIZES[(index + index // len(PAGE_SIZES)) % len(PAGE_SIZES)]
        drawn = draw_page(category, size, seed=seed, index=index)
        payload = _png_bytes(drawn.image)
        name = page_file_name(index, category)
        with atomic_open(out_dir / name, "wb") as handle:
            handle.write(payload)
        rows.append(
            {
                "image_id": f"page_{index:03d}_{category}",
                "path": str(out_dir / name),
                "category": category,
                "width": size.width,
                "height": size.height,
                "sha256": hashlib.sha256(payload).hexdigest(),
                "source": "synthetic",
                TEXT_COLUMN: drawn.text,
            }
        )
    manifest_path = out_dir / "manifest.csv"
    write_manifest(pd.DataFrame(rows), manifest_path)
    return manifest_path


def page_file_name(index: int, category: str) -> str:
    """The file name of generated page `index`."""
    return f"page_{index:03d}_{category}.png"


def is_generated_page(name: str) -> bool:
    """Whether `name` is a file name `generate_synthetic_pages` writes (so not a user's)."""
    return _GENERATED_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class DrawnPage:
    """A generated page and its ground truth: every text drawn on it, a line each, in the
    order drawn."""

    image: Image.Image
    text: str


def render_page(category: str, size: PageSize, seed: int, index: int) -> Image.Image:
    """Draw one page of `category` at `size`; deterministic in (seed, index)."""
    return draw_page(category, size, seed, index).image


def draw_page(category: str, size: PageSize, seed: int, index: int) -> DrawnPage:
    """One page of `category` at `size` with the text drawn on it; deterministic in (seed,
    index)."""
    rng = random.Random(seed * 1_000_003 + index)
    page = Image.new("RGB", (size.width, size.height), rng.choice(PAPER))
    canvas = _Canvas(page, size.body_px, rng, np.random.default_rng([seed, index]))
    draw_layout = {
        "text_heavy": _text_heavy,
        "mixed_layout": _mixed_layout,
        "image_rich": _image_rich,
    }[category]
    draw_layout(canvas)
    return DrawnPage(page, "\n".join(canvas.drawn))


def _png_bytes(image: Image.Image) -> bytes:
    """PNG encoding without metadata, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


@lru_cache(maxsize=64)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in default font at `px` pixels (its fixed bitmap font without FreeType)."""
    if features.check("freetype2"):
        return ImageFont.load_default(size=px)
    return ImageFont.load_default()


class _Canvas:
    """A page being drawn: margins, a vertical cursor and the random sources."""

    def __init__(
        self, page: Image.Image, body_px: int, rng: random.Random, np_rng: np.random.Generator
    ) -> None:
        self.page = page
        self.draw = ImageDraw.Draw(page)
        self.rng = rng
        self.np_rng = np_rng
        self.body_px = body_px
        self.width, self.height = page.size
        self.margin = max(16, round(0.07 * self.width))
        self.left, self.right = self.margin, self.width - self.margin
        self.top, self.bottom = self.margin, self.height - self.margin
        self.y = self.top
        # Every text drawn, in order: the page's ground truth.
        self.drawn: list[str] = []

    def line_height(self, px: int) -> int:
        """Baseline-to-baseline distance for text of `px` pixels."""
        return round(px * 1.35)

    def words(self, n_chars: int) -> str:
        """Pseudo-text of about `n_chars` characters, with sentence punctuation."""
        parts: list[str] = []
        length = 0
        capital = True
        while length < n_chars:
            word = "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(1, 4)))
            if capital:
                word = word.capitalize()
            capital = self.rng.random() < 0.12
            if capital:
                word += "."
            elif self.rng.random() < 0.06:
                word += ","
            parts.append(word)
            length += len(word) + 1
        return " ".join(parts)

    def chars_per_width(self, width: int, px: int) -> int:
        """How many characters of `px`-pixel text fit in `width` pixels, roughly."""
        sample = "the quick brown fox jumps over a lazy dog"
        # 0.9: capitals and punctuation are wider than the lowercase sample
        return max(4, int(0.9 * width / (_font(px).getlength(sample) / len(sample))))

    def text(self, xy: tuple[float, float], text: str, px: int, fill=INK, bold=False) -> None:
        """Draw one line of text; bold is a one-pixel double strike."""
        font = _font(px)
        self.drawn.append(text)
        self.draw.text(xy, text, fill=fill, font=font)
        if bold:
            self.draw.text((xy[0] + 1, xy[1]), text, fill=fill, font=font)

    def paragraph(self, x0: int, x1: int, y: int, y_max: int, px: int, n_lines: int) -> int:
        """A wrapped paragraph of up to `n_lines` between x0 and x1 from y; return the next y."""
        per_line = self.chars_per_width(x1 - x0, px)
        step = self.line_height(px)
        lines = textwrap.wrap(self.words(per_line * (n_lines - 1) + per_line // 3), per_line)
        for line in lines:
            if y + step > y_max:
                break
            self.text((x0, y), line, px)
            y += step
        return y + step // 2

    def column_text(self, x0: int, x1: int, y0: int, y1: int, px: int) -> None:
        """Fill a column with paragraphs and the odd subheading."""
        y = y0
        while y + self.line_height(px) < y1:
            if self.rng.random() < 0.2:
                self.text((x0, y), self.words(18)[:24], round(px * 1.2), bold=True)
                y += self.line_height(round(px * 1.2))
            y = self.paragraph(x0, x1, y, y1, px, self.rng.randint(3, 9))

    def running_head(self) -> None:
        """Small header line with a rule under it."""
        px = max(10, round(self.body_px * 0.75))
        self.text((self.left, self.y), self.words(30)[:40], px, fill=(90, 90, 90))
        self.y += self.line_height(px)
        self.draw.line((self.left, self.y, self.right, self.y), fill=(120, 120, 120), width=1)
        self.y += self.line_height(px)

    def heading(self, scale: float = 1.8) -> None:
        """A bold title at the cursor."""
        px = round(self.body_px * scale)
        per_line = self.chars_per_width(self.right - self.left, px)
        self.text((self.left, self.y), self.words(per_line // 2)[:per_line], px, bold=True)
        self.y += self.line_height(px) + self.body_px // 2

    def footer(self, with_notes: bool) -> int:
        """Footnotes (optional) and a page number at the bottom; return the top they take."""
        px = max(10, round(self.body_px * 0.7))
        step = self.line_height(px)
        number = str(self.rng.randint(1, 400))
        self.text((self.width // 2 - px, self.bottom - step), number, px)
        top = self.bottom - 2 * step
        if with_notes:
            n_notes = self.rng.randint(2, 3)
            top -= n_notes * step
            per_line = self.chars_per_width(self.right - self.left, px)
            for note in range(n_notes):
                line = f"{note + 1} " + self.words(per_line)[: per_line - 2]
                self.text((self.left, top + note * step), line, px)
            rule_x = self.left + (self.right - self.left) // 3
            self.draw.line((self.left, top - step // 2, rule_x, top - step // 2), fill=INK)
            top -= step
        return top

    def table(self, x0: int, x1: int, y0: int, y_max: int) -> int:
        """A ruled table with a shaded header row; return the y below it."""
        px = max(10, round(self.body_px * 0.85))
        row_h = self.line_height(px) + px // 2
        n_cols = self.rng.randint(3, 6) if x1 - x0 > 500 else self.rng.randint(2, 3)
        n_rows = min(self.rng.randint(4, 12), (y_max - y0) // row_h)
        if n_rows < 2:
            return y0
        col_w = (x1 - x0) // n_cols
        x1 = x0 + n_cols * col_w
        self.draw.rectangle((x0, y0, x1, y0 + row_h), fill=(225, 228, 235))
        for row in range(n_rows + 1):
            y = y0 + row * row_h
            self.draw.line((x0, y, x1, y), fill=INK, width=2 if row in (0, 1, n_rows) else 1)
        for col in range(n_cols + 1):
            x = x0 + col * col_w
            self.draw.line((x, y0, x, y0 + n_rows * row_h), fill=INK, width=1)
        cell_chars = self.chars_per_width(col_w - 2 * px, px)
        for row in range(n_rows):
            for col in range(n_cols):
                if row == 0:
                    cell = self.words(cell_chars)[:cell_chars]
                elif col == 0:
                    cell = self.words(cell_chars)[: cell_chars - 1]
                else:
                    cell = f"{self.rng.uniform(0, 999):.{self.rng.randint(0, 2)}f}"[:cell_chars]
                self.text(
                    (x0 + col * col_w + px // 2, y0 + row * row_h + px // 3),
                    cell,
                    px,
                    bold=row == 0,
                )
        return y0 + n_rows * row_h + self.body_px

    def photo(self, box: tuple[int, int, int, int]) -> None:
        """A photo-like block: a colour gradient, soft blobs and fine sensor noise."""
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        top = self.np_rng.uniform(40, 220, size=3)
        bottom = self.np_rng.uniform(40, 220, size=3)
        ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        pixels = top * (1 - ramp) + bottom * ramp + np.zeros((h, w, 3), np.float32)
        coarse = self.np_rng.uniform(-60, 60, size=(6, 8, 3)).astype(np.float32)
        blobs = Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8))
        pixels += np.asarray(blobs.resize((w, h), Image.Resampling.BICUBIC), np.float32) - 128
        pixels += self.np_rng.normal(0, 6, size=(h, w, 1)).astype(np.float32)
        block = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        self.page.paste(block, (x0, y0))

    def bar_chart(self, box: tuple[int, int, int, int]) -> None:
        """Axes, gridlines, filled bars and tick labels."""
        x0, y0, x1, y1 = self._chart_axes(box)
        n_bars = self.rng.randint(4, 10)
        slot = (x1 - x0) / n_bars
        colour = self.rng.choice(PALETTE)
        for bar in range(n_bars):
            top = y1 - (y1 - y0) * self.rng.uniform(0.1, 0.95)
            left = x0 + bar * slot + slot * 0.15
            self.draw.rectangle((left, top, left + slot * 0.7, y1 - 1), fill=colour, outline=INK)

    def line_chart(self, box: tuple[int, int, int, int]) -> None:
        """Axes, gridlines and a few random-walk series with markers."""
        x0, y0, x1, y1 = self._chart_axes(box)
        n_points = self.rng.randint(8, 20)
        for colour in self.rng.sample(PALETTE, self.rng.randint(1, 3)):
            walk = np.cumsum(self.np_rng.normal(0, 1, n_points))
            span = float(walk.max() - walk.min()) or 1.0
            ys = y1 - (walk - walk.min()) / span * (y1 - y0) * 0.9 - (y1 - y0) * 0.05
            xs = np.linspace(x0, x1, n_points)
            points = list(zip(xs.tolist(), ys.tolist(), strict=True))
            self.draw.line(points, fill=colour, width=2)
            for px_, py_ in points:
                self.draw.ellipse((px_ - 3, py_ - 3, px_ + 3, py_ + 3), fill=colour)

    def _chart_axes(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """Draw axes, gridlines and labels in `box`; return the plotting area."""
        x0, y0, x1, y1 = box
        px = max(10, round(self.body_px * 0.6))
        left, bottom = x0 + 4 * px, y1 - 2 * px
        for tick in range(5):
            y = bottom - (bottom - y0) * tick / 4
            self.draw.line((left, y, x1, y), fill=(210, 210, 210))
            self.text((x0, y - px // 2), f"{tick * 25}", px)
        self.draw.line((left, y0, left, bottom), fill=INK, width=2)
        self.draw.line((left, bottom, x1, bottom), fill=INK, width=2)
        self.text((left, bottom + px // 2), self.words(20)[:24], px)
        return left + 2, y0, x1, bottom

    def caption(self, x0: int, x1: int, y: int, number: int) -> int:
        """A 'Figure n:' caption under a figure; return the y below it."""
        px = max(10, round(self.body_px * 0.8))
        per_line = self.chars_per_width(x1 - x0, px)
        text = f"Figure {number}: " + self.words(per_line)
        self.text((x0, y), text[:per_line], px, fill=(60, 60, 60))
        return y + self.line_height(px) + self.body_px


def _columns(canvas: _Canvas, n_cols: int) -> list[tuple[int, int]]:
    """Left and right edges of `n_cols` columns with gutters between them."""
    gutter = canvas.body_px * 2
    col_w = (canvas.right - canvas.left - gutter * (n_cols - 1)) // n_cols
    return [
        (canvas.left + i * (col_w + gutter), canvas.left + i * (col_w + gutter) + col_w)
        for i in range(n_cols)
    ]


def _text_heavy(canvas: _Canvas) -> None:
    """Running head, title, dense paragraphs to the bottom, footnotes and a page number."""
    canvas.running_head()
    canvas.heading()
    bottom = canvas.footer(with_notes=canvas.height > canvas.width)
    n_cols = 2 if canvas.width > 1.3 * canvas.height else 1
    for x0, x1 in _columns(canvas, n_cols):
        y = canvas.y
        while y + canvas.line_height(canvas.body_px) < bottom:
            y = canvas.paragraph(x0, x1, y, bottom, canvas.body_px, canvas.rng.randint(5, 14))


def _mixed_layout(canvas: _Canvas) -> None:
    """Heading, multi-column text, a full-width ruled table, then more columns."""
    canvas.running_head()
    canvas.heading()
    bottom = canvas.footer(with_notes=False)
    n_cols = 1 if canvas.width < 800 else canvas.rng.choice((2, 3))
    split = canvas.y + round((bottom - canvas.y) * canvas.rng.uniform(0.25, 0.45))
    for x0, x1 in _columns(canvas, n_cols):
        canvas.column_text(x0, x1, canvas.y, split, canvas.body_px)
    canvas.y = canvas.table(canvas.left, canvas.right, split, bottom)
    for x0, x1 in _columns(canvas, n_cols):
        canvas.column_text(x0, x1, canvas.y, bottom, canvas.body_px)


def _image_rich(canvas: _Canvas) -> None:
    """Heading, then rows of figures (photos, bar and line charts) with captions and text."""
    canvas.running_head()
    canvas.heading(scale=1.5)
    bottom = canvas.footer(with_notes=False)
    n_cols = 2 if canvas.right - canvas.left > 900 else 1
    figure_h = max(120, min(round((canvas.right - canvas.left) / n_cols * 0.6), 700))
    number = 1
    draw_figure = (canvas.photo, canvas.bar_chart, canvas.line_chart)
    while canvas.y + figure_h + 2 * canvas.body_px < bottom:
        y_next = canvas.y
        for x0, x1 in _columns(canvas, n_cols):
            # the first figure is always a photo, so every page of the category has one
            figure = canvas.photo if number == 1 else canvas.rng.choice(draw_figure)
            figure((x0, canvas.y, x1, canvas.y + figure_h))
            y_next = max(y_next, canvas.caption(x0, x1, canvas.y + figure_h + 6, number))
            number += 1
        canvas.y = canvas.paragraph(
            canvas.left, canvas.right, y_next, bottom, canvas.body_px, canvas.rng.randint(1, 4)
        )

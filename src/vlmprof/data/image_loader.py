"""Load one page image as 8-bit RGB, or fail with a one-line reason the run record can keep.

Every way a page can be bad (missing, empty, truncated, not an image, too many pixels) ends
in `ImageLoadError`, so a profiling job records the error and moves on to the next page.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import NoReturn

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 50_000_000
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")
_HIGH_DEPTH_MODES = ("I", "F")


class ImageLoadError(ValueError):
    """A page image that cannot be used; the message is one line naming file and reason."""


def load_page(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image at `path` as RGB, EXIF orientation applied, transparency over white.

    The pixel count is checked from the header before any decoding, and the image is fully
    decoded here so truncated files fail now rather than later inside preprocessing.
    """
    path = Path(path)
    if not path.is_file():
        _fail(path, "file not found" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        _fail(path, "empty file")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's warning; its hard error stays.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    _fail(
                        path,
                        f"{width}x{height} = {width * height} pixels exceeds "
                        f"max_pixels={max_pixels}",
                    )
                image.load()
                oriented = ImageOps.exif_transpose(image)
                return to_rgb(oriented)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        _fail(path, "not a recognised image format")
    except Image.DecompressionBombError as exc:
        _fail(path, f"too many pixels ({exc})")
    except Exception as exc:  # decoders raise many types on corrupt data; all mean "bad page"
        _fail(path, f"corrupt or truncated image data ({type(exc).__name__}: {exc})")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: alpha over white, high bit depths scaled."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _ALPHA_MODES:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    if image.mode.startswith("I;16") or image.mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_to_uint8(np.asarray(image)), "L").convert("RGB")
    return image.convert("RGB")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale one channel of integer or float samples to 0..255.

    Unsigned 16-bit data is scaled by its full range (65535 -> 255); 32-bit data already in
    0..255 is kept, in 0..65535 treated as 16-bit, and anything else stretched min..max.
    """
    if values.dtype.kind == "f":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if values.size and values.min() >= 0 and values.max() <= 1:
            return np.round(values * 255).astype(np.uint8)
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        low, high = 0.0, 65535.0
    elif low >= 0 and high <= 255 and values.dtype.kind != "f":
        low, high = 0.0, 255.0
    elif low >= 0 and high <= 65535 and values.dtype.kind != "f":
        low, high = 0.0, 65535.0
    span = high - low or 1.0
    scaled = (values.astype(np.float64) - low) * (255.0 / span)
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def _fail(path: Path, reason: str) -> NoReturn:
    """Raise ImageLoadError for `path` with a single-line reason."""
    raise ImageLoadError(f"{path}: {' '.join(reason.split())}")

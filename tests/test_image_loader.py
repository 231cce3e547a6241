"""Page loading: every bad input ends in ImageLoadError; every good one becomes RGB."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vlmprof.data.image_loader import ImageLoadError, load_page

FAST = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _noise(mode_size: tuple[int, int], seed: int = 0) -> Image.Image:
    """An RGB image of random pixels (so its encoded data does not compress away)."""
    width, height = mode_size
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width x height, followed by a tiny, truncated IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat))
    return path


def _reason(path: Path, **kwargs: int) -> str:
    with pytest.raises(ImageLoadError) as caught:
        load_page(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def test_missing_empty_and_directory(tmp_path: Path) -> None:
    assert "file not found" in _reason(tmp_path / "absent.png")
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty file" in _reason(tmp_path / "empty.png")
    (tmp_path / "folder.png").mkdir()
    assert "not a regular file" in _reason(tmp_path / "folder.png")


def test_non_image_bytes_with_image_extension(tmp_path: Path) -> None:
    for name in ("notes.png", "notes.jpg", "notes.tiff"):
        (tmp_path / name).write_text("plain text, not pixels\n" * 20)
        assert "not a recognised image format" in _reason(tmp_path / name)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_fail_on_full_decode(tmp_path: Path, fmt: str) -> None:
    buffer = io.BytesIO()
    _noise((200, 150)).save(buffer, format=fmt)
    data = buffer.getvalue()
    path = tmp_path / f"truncated.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with Image.open(path) as lazy:  # the header alone still looks fine
        assert lazy.size == (200, 150)
    assert "corrupt or truncated" in _reason(path)


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path: Path) -> None:
    big = _png_header_only(tmp_path / "big.png", 10_000, 8_000)  # 80 Mpx, data truncated
    assert "10000x8000 = 80000000 pixels exceeds max_pixels=50000000" in _reason(big)
    small = tmp_path / "small.png"
    _noise((100, 60)).save(small)
    assert "exceeds max_pixels=5000" in _reason(small, max_pixels=5_000)
    assert load_page(small, max_pixels=6_000).size == (100, 60)


def test_pillow_decompression_bomb_guards_become_load_errors(tmp_path: Path) -> None:
    huge = _png_header_only(tmp_path / "huge.png", 20_000, 20_000)
    assert "too many pixels" in _reason(huge, max_pixels=10**9)
    # Between Pillow's warning and error thresholds: no warning escapes, the decode fails.
    warned = _png_header_only(tmp_path / "warned.png", 12_000, 9_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "corrupt or truncated" in _reason(warned, max_pixels=200_000_000)


def _load_array(image: Image.Image, path: Path, **save: object) -> np.ndarray:
    image.save(path, **save)
    loaded = load_page(path)
    assert loaded.mode == "RGB"
    assert loaded.size == image.size
    return np.asarray(loaded)


def test_low_bit_depth_and_palette_modes(tmp_path: Path) -> None:
    grey = Image.new("L", (4, 2), 77)
    assert (_load_array(grey, tmp_path / "grey.png") == 77).all()
    bilevel = Image.new("1", (5, 3), 0)
    bilevel.putpixel((1, 1), 1)
    pixels = _load_array(bilevel, tmp_path / "bilevel.png")
    assert tuple(pixels[1, 1]) == (255, 255, 255) and tuple(pixels[0, 0]) == (0, 0, 0)
    palette = Image.new("P", (3, 3), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.putpixel((0, 0), 0)
    pixels = _load_array(palette, tmp_path / "palette.png")
    assert tuple(pixels[1, 1]) == (10, 200, 30)
    pixels = _load_array(palette, tmp_path / "palette_alpha.png", transparency=0)
    assert tuple(pixels[0, 0]) == (255, 255, 255)  # transparent index over white
    assert tuple(pixels[2, 2]) == (10, 200, 30)


def test_alpha_is_composited_onto_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (3, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (200, 0, 0, 255))
    rgba.putpixel((2, 0), (0, 0, 0, 128))
    pixels = _load_array(rgba, tmp_path / "rgba.png")
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[0, 1]) == (200, 0, 0)
    assert all(abs(int(v) - 127) <= 1 for v in pixels[0, 2])
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (40, 255))
    pixels = _load_array(la, tmp_path / "la.png")
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[0, 1]) == (40, 40, 40)


def test_cmyk_converts_to_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    for name in ("cmyk.tiff", "cmyk.jpg"):
        pixels = _load_array(cmyk, tmp_path / name).astype(int)
        assert pixels[..., 0].min() > 230 and pixels[..., 1:].max() < 25, name


def test_sixteen_and_thirty_two_bit_scale_to_eight_bit(tmp_path: Path) -> None:
    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))
    assert deep.mode.startswith("I;16")
    for name in ("deep.png", "deep.tiff"):
        pixels = _load_array(deep, tmp_path / name)
        assert list(pixels[0, :, 0]) == [0, 100, 255], name
    wide = Image.fromarray(np.array([[0, 257 * 50, 65535]], dtype=np.int32))
    assert wide.mode == "I"
    assert list(_load_array(wide, tmp_path / "wide.tiff")[0, :, 1]) == [0, 50, 255]
    signed = Image.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32))
    assert list(_load_array(signed, tmp_path / "signed.tiff")[0, :, 2]) == [0, 128, 255]
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert list(_load_array(unit, tmp_path / "unit.tiff")[0, :, 0]) == [0, 128, 255]


def test_tiny_extreme_and_non_ascii_pages(tmp_path: Path) -> None:
    assert _load_array(Image.new("RGB", (1, 1), (1, 2, 3)), tmp_path / "dot.png").shape == (
        1,
        1,
        3,
    )
    strip = Image.new("L", (10_000, 20), 200)
    assert _load_array(strip, tmp_path / "strip.png").shape == (20, 10_000, 3)
    named = tmp_path / "页面 ü é.png"
    assert _load_array(Image.new("RGB", (6, 4), "blue"), named).shape == (4, 6, 3)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), "white")
    image.paste((255, 0, 0), (0, 0, 10, 10))  # red block at top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = np.asarray(load_page(path)).astype(int)
    assert loaded.shape == (40, 20, 3)
    assert loaded[2, 17, 0] > 200 and loaded[2, 17, 1] < 60  # now at top-right
    assert loaded[2, 2, 1] > 200  # top-left is white


def test_duplicate_files_load_alike(tmp_path: Path) -> None:
    _noise((20, 10)).save(tmp_path / "one.png")
    (tmp_path / "two.png").write_bytes((tmp_path / "one.png").read_bytes())
    assert load_page(tmp_path / "one.png").tobytes() == load_page(tmp_path / "two.png").tobytes()


# Modes each format writes, so every drawn example is a file real tools could produce.
FORMAT_MODES = {
    "png": ["1", "L", "P", "RGB", "RGBA", "LA", "I;16"],
    "tiff": ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"],
    "bmp": ["1", "L", "P", "RGB"],
    "jpg": ["L", "RGB", "CMYK"],
    "webp": ["RGB", "RGBA"],
}
DTYPES = {"I;16": np.uint16, "I": np.int32, "F": np.float32}


@st.composite
def page_images(draw: st.DrawFn) -> tuple[Image.Image, str]:
    """A random image in a random mode and size, with a format that can store it."""
    fmt = draw(st.sampled_from(sorted(FORMAT_MODES)))
    mode = draw(st.sampled_from(FORMAT_MODES[fmt]))
    width = draw(st.integers(1, 48))
    height = draw(st.integers(1, 48))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode in DTYPES:
        info = np.finfo if mode == "F" else np.iinfo
        limits = info(DTYPES[mode])
        high = 65535 if mode == "I" else limits.max
        pixels = rng.uniform(0 if mode != "F" else -1e6, high, (height, width))
        image = Image.fromarray(pixels.astype(DTYPES[mode]))
    else:
        raw = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        image = Image.fromarray(raw, "RGBA").convert(mode)
    return image, fmt


@FAST
@given(page=page_images())
def test_any_mode_and_size_loads_as_rgb_of_the_same_size(
    tmp_path: Path, page: tuple[Image.Image, str]
) -> None:
    image, fmt = page
    path = tmp_path / f"page.{fmt}"
    image.save(path)
    loaded = load_page(path)
    assert loaded.mode == "RGB"
    assert loaded.size == image.size


MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"GIF89a", b"RIFF"]


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
@FAST
@given(
    head=st.sampled_from(MAGIC),
    body=st.binary(max_size=300),
    suffix=st.sampled_from([".png", ".jpg", ".tif", ".bmp", ".webp", ".gif"]),
)
def test_random_bytes_load_or_fail_cleanly(
    tmp_path: Path, head: bytes, body: bytes, suffix: str
) -> None:
    path = tmp_path / f"random{suffix}"
    path.write_bytes(head + body)
    try:
        loaded = load_page(path)
    except ImageLoadError as exc:
        assert "\n" not in str(exc)
    else:
        assert loaded.mode == "RGB"


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
@FAST
@given(fmt=st.sampled_from(["PNG", "JPEG", "TIFF", "BMP", "WEBP"]), cut=st.floats(0.0, 0.99))
def test_cut_off_files_load_or_fail_cleanly(tmp_path: Path, fmt: str, cut: float) -> None:
    buffer = io.BytesIO()
    _noise((24, 16), seed=3).save(buffer, format=fmt)
    data = buffer.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: int(len(data) * cut)])
    try:
        loaded = load_page(path)
    except ImageLoadError:
        return
    assert loaded.size == (24, 16)

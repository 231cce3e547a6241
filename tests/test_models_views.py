"""Image-token counts and crop grids against the published formula."""

from __future__ import annotations

import pytest

from vlmprof.models.deepseek_ocr.views import choose_grid, plan_views


def formula(tiles_w: int, tiles_h: int) -> int:
    """Facts sheet: 10*h*(10*w + 1) + 272 + 1 with crops, 273 without."""
    return 10 * tiles_h * (10 * tiles_w + 1) + 273 if tiles_w * tiles_h > 1 else 273


@pytest.mark.parametrize(
    ("size", "expected_grid"),
    [
        ((640, 640), (1, 1)),  # both sides <= 640: no crops
        ((500, 300), (1, 1)),
        ((1240, 1754), (2, 3)),  # A4 portrait
        ((1275, 1650), (2, 3)),  # Letter portrait
        ((1600, 900), (2, 1)),  # slide
        ((600, 2000), (1, 3)),  # receipt: 1x3 is closest to 0.3
        ((2000, 2000), (2, 2)),  # square: 2x2 ties 1x1 ratio and has the pixels
        ((3000, 500), (6, 1)),
    ],
)
def test_gundam_grid_and_tokens(size, expected_grid):
    plan = plan_views(*size, "gundam")
    assert (plan.tiles_w, plan.tiles_h) == expected_grid
    assert plan.image_tokens == formula(*expected_grid)
    assert plan.n_crops == (expected_grid[0] * expected_grid[1] if expected_grid != (1, 1) else 0)


@pytest.mark.parametrize(
    ("mode", "tokens"),
    [("tiny", 8 * 9 + 1), ("small", 10 * 11 + 1), ("base", 273), ("large", 20 * 21 + 1)],
)
def test_single_view_modes(mode, tokens):
    plan = plan_views(1240, 1754, mode)
    assert plan.n_crops == 0
    assert plan.image_tokens == tokens


def test_max_crops_bounds():
    assert choose_grid(4000, 400, 640, max_tiles=9) == (9, 1)
    with pytest.raises(ValueError, match="max_crops"):
        choose_grid(1000, 1000, 640, max_tiles=10)

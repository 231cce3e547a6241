"""DeepSeek-OCR view geometry: resolution modes, the crop-grid choice and image-token counts.

Pure functions of image size and mode (no torch), shared by preprocessing, the static FLOP
analysis and the report, so the count of image tokens is defined in exactly one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PATCH = 16
COMPRESSION = 4  # the two stride-2 convolutions: 16x fewer tokens, 4x per side
CROP_MIN_TILES = 2
CROP_MAX_TILES_DEFAULT = 6
CROP_MAX_TILES_LIMIT = 9


@dataclass(frozen=True)
class ModeSpec:
    """One resolution mode of the reference inference code."""

    base_size: int
    image_size: int
    crop: bool


MODES: dict[str, ModeSpec] = {
    "tiny": ModeSpec(512, 512, False),
    "small": ModeSpec(640, 640, False),
    "base": ModeSpec(1024, 1024, False),
    "large": ModeSpec(1280, 1280, False),
    "gundam": ModeSpec(1024, 640, True),
}


@dataclass(frozen=True)
class ViewPlan:
    """How one image is cut into views and how many image tokens it becomes."""

    mode: str
    global_size: int
    crop_size: int
    tiles_w: int
    tiles_h: int

    @property
    def n_crops(self) -> int:
        """Number of local crops (0 when the image is not tiled)."""
        return self.tiles_w * self.tiles_h if self.tiles_w * self.tiles_h > 1 else 0

    @property
    def image_tokens(self) -> int:
        """Image tokens in the prompt: local rows + newlines, global rows + newlines, separator."""
        return image_token_count(self.global_size, self.crop_size, self.tiles_w, self.tiles_h)


def mode_spec(
    mode: str, modes: Mapping[str, ModeSpec] = MODES, model: str = "deepseek_ocr"
) -> ModeSpec:
    """The named mode of `model`, or a ValueError listing the allowed ones."""
    if mode not in modes:
        raise ValueError(f"mode: unknown mode {mode!r} for {model}; allowed: {', '.join(modes)}")
    return modes[mode]


def tokens_per_side(view_size: int) -> int:
    """Tokens along one side of a view after patching (16) and compression (4)."""
    return view_size // PATCH // COMPRESSION


def image_token_count(global_size: int, crop_size: int, tiles_w: int, tiles_h: int) -> int:
    """Image tokens of a view plan, following the reference token layout."""
    g = tokens_per_side(global_size)
    tokens = g * (g + 1) + 1
    if tiles_w * tiles_h > 1:
        c = tokens_per_side(crop_size)
        tokens += (c * tiles_h) * (c * tiles_w + 1)
    return tokens


def candidate_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """All (w, h) tilings with min_tiles <= w*h <= max_tiles, ordered by tile count."""
    grids = {
        (w, h)
        for n in range(min_tiles, max_tiles + 1)
        for w in range(1, n + 1)
        for h in range(1, n + 1)
        if min_tiles <= w * h <= max_tiles
    }
    return sorted(grids, key=lambda grid: grid[0] * grid[1])


def choose_grid(
    width: int, height: int, crop_size: int, max_tiles: int = CROP_MAX_TILES_DEFAULT
) -> tuple[int, int]:
    """The (w, h) tiling whose aspect ratio is closest to the image's.

    Ties go to the larger grid when the image has enough pixels to fill it, as the
    reference `dynamic_preprocess` does.
    """
    if not CROP_MIN_TILES <= max_tiles <= CROP_MAX_TILES_LIMIT:
        raise ValueError(
            f"max_crops: {max_tiles} is out of range; allowed: "
            f"{CROP_MIN_TILES}..{CROP_MAX_TILES_LIMIT}"
        )
    aspect = width / height
    area = width * height
    best_diff = float("inf")
    best = (1, 1)
    for w, h in candidate_grids(CROP_MIN_TILES, max_tiles):
        diff = abs(aspect - w / h)
        if diff < best_diff:
            best_diff, best = diff, (w, h)
        elif diff == best_diff and area > 0.5 * crop_size * crop_size * w * h:
            best = (w, h)
    return best


def plan_views(
    width: int,
    height: int,
    mode: str,
    max_tiles: int = CROP_MAX_TILES_DEFAULT,
    *,
    modes: Mapping[str, ModeSpec] = MODES,
    plan: type[ViewPlan] = ViewPlan,
    model: str = "deepseek_ocr",
) -> ViewPlan:
    """Views of one image in a mode: a global view, plus local crops in crop modes when a
    side exceeds the crop size. `modes` and `plan` (its token count) are the model's."""
    spec = mode_spec(mode, modes, model)
    tiles = (1, 1)
    if spec.crop and max(width, height) > spec.image_size:
        tiles = choose_grid(width, height, spec.image_size, max_tiles)
    return plan(mode, spec.base_size, spec.image_size, tiles[0], tiles[1])

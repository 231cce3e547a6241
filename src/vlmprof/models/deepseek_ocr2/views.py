"""DeepSeek-OCR-2 view geometry: resolution modes, crop grid and image-token counts.

As transformers' `DeepseekOcr2ImageProcessor` and `DeepseekOcr2Processor` define them: a
1024-pixel global view (the page padded to a square), plus, in `gundam` mode and when the
page's longer side exceeds 768 pixels, 2..max_crops local 768-pixel tiles on the grid whose
aspect ratio is closest to the page's (the same choice DeepSeek-OCR makes). Each view
becomes (side / 64)^2 image tokens (256 global, 144 per tile), plus one view separator; no
newline tokens. Pure functions (no torch), shared by preprocessing, the static FLOP
analysis and the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlmprof.models.deepseek_ocr import views as ocr_views
from vlmprof.models.deepseek_ocr.views import CROP_MAX_TILES_DEFAULT, ModeSpec, tokens_per_side

# `base` is the processor's crop_to_patches=False path with tile_size 1024 (the reference
# code's crop_mode=False); `small` is the processor's crop_to_patches=False default (768).
MODES: dict[str, ModeSpec] = {
    "small": ModeSpec(768, 768, False),
    "base": ModeSpec(1024, 1024, False),
    "gundam": ModeSpec(1024, 768, True),
}


@dataclass(frozen=True)
class ViewPlan(ocr_views.ViewPlan):
    """DeepSeek-OCR's view plan with DeepSeek-OCR-2's image-token count."""

    @property
    def image_tokens(self) -> int:
        """Image tokens in the prompt: local tiles, the global view, the separator."""
        return image_token_count(self.global_size, self.crop_size, self.n_crops)


def mode_spec(mode: str) -> ModeSpec:
    """The named mode, or a ValueError listing the allowed ones."""
    return ocr_views.mode_spec(mode, MODES, "deepseek_ocr2")


def image_token_count(global_size: int, crop_size: int, n_crops: int) -> int:
    """Image tokens of one page: every view's (side/64)^2 query outputs, plus the separator."""
    return tokens_per_side(global_size) ** 2 + n_crops * tokens_per_side(crop_size) ** 2 + 1


def plan_views(
    width: int, height: int, mode: str, max_tiles: int = CROP_MAX_TILES_DEFAULT
) -> ViewPlan:
    """Views of one image in a mode: a global view, plus local tiles in the crop mode."""
    plan = ocr_views.plan_views(
        width, height, mode, max_tiles, modes=MODES, plan=ViewPlan, model="deepseek_ocr2"
    )
    assert isinstance(plan, ViewPlan)
    return plan

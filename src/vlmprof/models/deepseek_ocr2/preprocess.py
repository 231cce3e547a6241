"""DeepSeek-OCR-2 page preprocessing by transformers' own image processor (PIL backend).

The processor resizes the page's longer side to the global size and pads it to a square
with the mean colour, cuts local tiles on the chosen grid in crop mode, and normalises
with mean = std = 0.5. The view plan of `views` says how many tiles to
expect; the two must agree, or the prompt's image-token count would be wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from PIL import Image
from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import (
    DeepseekOcr2ImageProcessorPil,
)

from vlmprof.models.deepseek_ocr.views import CROP_MIN_TILES
from vlmprof.models.deepseek_ocr2.views import ViewPlan, mode_spec, plan_views


@dataclass
class PreparedViews:
    """Normalised pixel tensors of one page and the plan that produced them."""

    plan: ViewPlan
    global_view: torch.Tensor  # (1, 3, G, G)
    crops: torch.Tensor | None  # (n, 3, C, C) or None


@lru_cache(maxsize=16)
def image_processor(mode: str, max_crops: int) -> DeepseekOcr2ImageProcessorPil:
    """transformers' image processor set up for one mode (no file is read)."""
    spec = mode_spec(mode)
    return DeepseekOcr2ImageProcessorPil(
        size={"height": spec.base_size, "width": spec.base_size},
        # Without crops the processor sizes the global view to tile_size.
        tile_size=spec.image_size if spec.crop else spec.base_size,
        crop_to_patches=spec.crop,
        min_patches=CROP_MIN_TILES,
        max_patches=max_crops,
    )


def prepare_views(image: Image.Image, mode: str, max_crops: int) -> PreparedViews:
    """All views of one RGB page for a mode, as normalised tensors."""
    plan = plan_views(image.width, image.height, mode, max_crops)
    out = image_processor(mode, max_crops)(image, return_tensors="pt")
    n_crops = int(out["num_local_patches"][0])
    if n_crops != plan.n_crops:
        raise RuntimeError(
            f"transformers cut a {image.width}x{image.height} page into {n_crops} tiles, the "
            f"view plan into {plan.n_crops}; deepseek_ocr2.views no longer matches it"
        )
    crops = out["pixel_values_local"] if n_crops else None
    return PreparedViews(plan=plan, global_view=out["pixel_values"], crops=crops)

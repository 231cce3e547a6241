"""DeepSeek-OCR image preprocessing as the reference code does it.

The global view is the page padded to a square with the mean colour and resized to the
base size; in crop modes the page is also resized to the chosen tile grid and cut into
square tiles. Pixels are normalised with mean = std = 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps

from vlmprof.models.deepseek_ocr.views import ViewPlan, plan_views

MEAN = 0.5
STD = 0.5
PAD_COLOUR = (127, 127, 127)  # the mean colour, as int(0.5 * 255)


@dataclass
class PreparedViews:
    """Normalised pixel tensors of one page and the plan that produced them."""

    plan: ViewPlan
    global_view: torch.Tensor  # (1, 3, G, G)
    crops: torch.Tensor | None  # (n, 3, C, C) or None


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (3, H, W) float tensor normalised with mean/std 0.5."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy((array - MEAN) / STD).permute(2, 0, 1).contiguous()


def global_view(image: Image.Image, size: int) -> Image.Image:
    """Pad to a square with the mean colour (keeping the aspect ratio), then resize."""
    return ImageOps.pad(image, (size, size), method=Image.Resampling.BICUBIC, color=PAD_COLOUR)


def crop_tiles(image: Image.Image, plan: ViewPlan) -> list[Image.Image]:
    """Resize to the tile grid and cut row by row into square tiles."""
    size = plan.crop_size
    resized = image.resize((size * plan.tiles_w, size * plan.tiles_h), Image.Resampling.BICUBIC)
    return [
        resized.crop((col * size, row * size, (col + 1) * size, (row + 1) * size))
        for row in range(plan.tiles_h)
        for col in range(plan.tiles_w)
    ]


def prepare_views(image: Image.Image, mode: str, max_crops: int) -> PreparedViews:
    """All views of one RGB page for a mode, as normalised tensors."""
    plan = plan_views(image.width, image.height, mode, max_crops)
    whole = to_tensor(global_view(image, plan.global_size)).unsqueeze(0)
    crops = None
    if plan.n_crops:
        crops = torch.stack([to_tensor(tile) for tile in crop_tiles(image, plan)])
    return PreparedViews(plan=plan, global_view=whole, crops=crops)

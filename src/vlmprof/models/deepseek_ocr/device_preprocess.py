"""DeepSeek-OCR preprocessing as tensor operations on the model's device (`preprocess: gpu`).

The views of preprocess.py (the page padded to a square with the mean colour and resized
for the global view; resized to the tile grid and cut row by row for the crops; mean = std
= 0.5), resized by torch's antialiased bicubic interpolation on the device instead of
PIL's on the host. Only the decoded page's 8-bit pixels cross to the device. The two
bicubic kernels differ (PIL's a = -0.5, torch's a = -0.75) and PIL rounds to 8 bits after
resizing, so the pixels agree within a tolerance, not exactly; the correctness gate judges
what that does to the tokens.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vlmprof.models.deepseek_ocr.preprocess import MEAN, PAD_COLOUR, STD, PreparedViews
from vlmprof.models.deepseek_ocr.views import plan_views


def page_pixels(image: Image.Image, device: torch.device) -> torch.Tensor:
    """RGB page -> (1, 3, H, W) float32 pixels in 0..255 on `device` (8 bits cross over)."""
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    return array.to(device).permute(2, 0, 1).unsqueeze(0).float()


def resize(pixels: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bicubic, antialiased when shrinking, clamped to the 8-bit range like an image."""
    resized = F.interpolate(
        pixels, size=(height, width), mode="bicubic", antialias=True, align_corners=False
    )
    return resized.clamp(0.0, 255.0)


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """0..255 pixels -> the model's input scale (mean = std = 0.5)."""
    return (pixels / 255.0 - MEAN) / STD


def padded_square(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """Fit the page inside a `size` square keeping its aspect ratio, centred on the mean
    colour, as PIL's `ImageOps.pad` places it (its rounding included)."""
    height, width = pixels.shape[-2:]
    if width == height:
        return resize(pixels, size, size)
    if width > height:
        new_width, new_height = size, round(height / width * size)
    else:
        new_width, new_height = round(width / height * size), size
    canvas = torch.tensor(PAD_COLOUR, dtype=pixels.dtype, device=pixels.device)
    canvas = canvas.view(1, 3, 1, 1).expand(1, 3, size, size).clone()
    left, top = round((size - new_width) * 0.5), round((size - new_height) * 0.5)
    canvas[..., top : top + new_height, left : left + new_width] = resize(
        pixels, new_width, new_height
    )
    return canvas


def prepare_views_on_device(
    image: Image.Image, mode: str, max_crops: int, device: torch.device
) -> PreparedViews:
    """All views of one RGB page for a mode, computed on `device`. On CUDA it waits for the
    device before returning, so the time a caller measures is the preprocessing's."""
    plan = plan_views(image.width, image.height, mode, max_crops)
    pixels = page_pixels(image, device)
    whole = normalise(padded_square(pixels, plan.global_size))
    crops = None
    if plan.n_crops:
        size = plan.crop_size
        grid = resize(pixels, size * plan.tiles_w, size * plan.tiles_h)
        tiles = grid.reshape(3, plan.tiles_h, size, plan.tiles_w, size)
        crops = normalise(tiles.permute(1, 3, 0, 2, 4).reshape(-1, 3, size, size))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return PreparedViews(plan=plan, global_view=whole, crops=crops)

"""A page turned into an `hf_vlm` model's inputs: the architecture's own image processor
(built offline from its class defaults) and a stand-in prompt with the image tokens laid
out as that architecture's processor would lay them out."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import transformers
from PIL import Image
from transformers import PretrainedConfig
from transformers.image_processing_utils import BaseImageProcessor

from vlmprof.models.base import ModelInputs
from vlmprof.models.hf_vlm.architectures import Architecture

# A fixed stand-in for the instruction text around the image (no hub tokenizer): a few ids
# inside every preset's vocab, before and after the image.
PROMPT_BEFORE = (11, 12, 13)
PROMPT_AFTER = (21, 22, 23, 24)
# Stand-ins for the tokenizer tokens a processor writes around and between image tokens that
# the config names no id for, one id per kind of token: GOT-OCR2's and QianfanOCR's <img> and
# </img>, and GraniteDocling's tile marker (<fake_token_around_image>), row-column tag
# (<row_i_col_j>), thumbnail tag (<global-img>) and newline.
STAND_IN_BOUNDS = (31, 32)
TILE_MARK, TILE_TAG, THUMBNAIL_TAG, NEWLINE = 33, 34, 35, 36


def image_processor(
    arch: Architecture, preset: str, config: PretrainedConfig
) -> BaseImageProcessor:
    """The architecture's image processor with the preset's settings; a fixed-size encoder's
    tile size comes from its vision config, so the two always agree."""
    settings = dict(arch.processor[preset])
    if arch.tile_size_key is not None:
        side = getattr(config.vision_config, arch.tile_size_key)
        height, width = side if isinstance(side, (list, tuple)) else (side, side)
        settings["size"] = {"height": height, "width": width}
    return getattr(transformers, arch.image_processor_class)(**settings)


def grid_image_tokens(config: PretrainedConfig, pixels: Mapping[str, torch.Tensor]) -> int:
    """Qwen2.5-VL, PaddleOCR-VL, GLM-OCR: one token per spatial_merge_size^2 patches of the page's
    grid (`image_grid_thw`)."""
    merge = config.vision_config.spatial_merge_size
    return int(pixels["image_grid_thw"].prod(dim=-1).sum()) // (merge * merge)


def lighton_image_tokens(config: PretrainedConfig, pixels: Mapping[str, torch.Tensor]) -> int:
    """LightOnOCR: one token per merged square of patches of the resized page
    (`image_sizes`, before padding); an odd last row or column of patches is dropped."""
    side = config.vision_config.patch_size * config.spatial_merge_size
    return int((pixels["image_sizes"] // side).prod(dim=-1).sum())


def got_image_tokens(config: PretrainedConfig, pixels: Mapping[str, torch.Tensor]) -> int:
    """GOT-OCR2: per tile, the encoder's patch grid after the projector's two stride-2 convs."""
    vision = config.vision_config
    side = vision.image_size // vision.patch_size // 4
    return int(pixels["pixel_values"].shape[0]) * side * side


def hunyuan_image_tokens(config: PretrainedConfig, pixels: Mapping[str, torch.Tensor]) -> int:
    """HunYuanVL: the merged grid of the page's patches with one newline token closing each
    row, plus the merger's begin and end tokens (which share the image token's id)."""
    merge = config.vision_config.spatial_merge_size
    rows, columns = (int(n) // merge for n in pixels["image_grid_thw"][0, 1:])
    return rows * (columns + 1) + 2


def shuffled_tile_tokens(config: PretrainedConfig, pixels: Mapping[str, torch.Tensor]) -> int:
    """QianfanOCR: per tile, the encoder's patch grid after the pixel shuffle
    (`downsample_ratio` of each side)."""
    vision = config.vision_config
    side = int(vision.image_size[0] // vision.patch_size[0] * config.downsample_ratio)
    return int(pixels["pixel_values"].shape[0]) * side * side


IMAGE_TOKENS: dict[str, Callable[[PretrainedConfig, Mapping[str, torch.Tensor]], int]] = {
    "qwen2_5_vl": grid_image_tokens,
    "got_ocr2": got_image_tokens,
    "lighton_ocr": lighton_image_tokens,
    "paddleocr_vl": grid_image_tokens,
    "glm_ocr": grid_image_tokens,
    "hunyuan_vl": hunyuan_image_tokens,
    "qianfan_ocr": shuffled_tile_tokens,
}


def run_span(
    arch: Architecture, config: PretrainedConfig, processed: Mapping[str, Any]
) -> list[int]:
    """The image tokens as one run, between the config's bounding ids or stand-ins for the
    tokenizer's, where the architecture has them."""
    image = [config.image_token_id] * IMAGE_TOKENS[arch.name](config, processed)
    if arch.image_bounds is not None:
        start, end = (getattr(config, key) for key in arch.image_bounds)
        return [start, *image, end]
    if arch.stand_in_bounds:
        return [STAND_IN_BOUNDS[0], *image, STAND_IN_BOUNDS[1]]
    return image


def tile_grid_span(
    arch: Architecture, config: PretrainedConfig, processed: Mapping[str, Any]
) -> list[int]:
    """GraniteDocling (Idefics3's layout): each tile's image tokens behind a tile marker and its
    row-column tag, a newline after each row of tiles, then (for a page of several tiles) the
    thumbnail's behind a newline, a marker and the thumbnail tag, closed by a marker. The
    newline ending the last row and the one opening the thumbnail are one token, as a BPE
    tokenizer merges them. Tokens per tile: the coarse connector's (the processor's default
    route), the encoder's patch grid shrunk `scale_factor` times on each side."""
    vision = config.vision_config
    side = vision.image_size // vision.patch_size // vision.scale_factor
    tile = [config.image_token_id] * side * side
    rows, columns = processed["rows"][0][0], processed["cols"][0][0]
    span: list[int] = []
    for _ in range(rows):
        for _ in range(columns):
            span += [TILE_MARK, TILE_TAG, *tile]
        span.append(NEWLINE)
    if rows * columns > 1:
        span += [TILE_MARK, THUMBNAIL_TAG, *tile, TILE_MARK]
    return span


# How each architecture's processor lays out the image part of its prompt (default: one run).
IMAGE_SPANS: dict[str, Callable[[Architecture, PretrainedConfig, Mapping[str, Any]], list[int]]] = {
    "granite_docling": tile_grid_span,
}


def page_inputs(
    arch: Architecture, config: PretrainedConfig, processor: BaseImageProcessor, image: Image.Image
) -> ModelInputs:
    """Pixel tensors keyed by the model's forward argument names, and the prompt: stand-in text
    around the image part as the architecture's processor lays it out."""
    processed = processor(image.convert("RGB"), return_tensors="pt")
    span = IMAGE_SPANS.get(arch.name, run_span)(arch, config, processed)
    ids = torch.tensor([[*PROMPT_BEFORE, *span, *PROMPT_AFTER]], dtype=torch.long)
    # Only what the model's forward takes (GOT's processor also returns `num_patches`).
    pixels: dict[str, Any] = {
        key: processed[key] for key in processor.model_input_names if key in processed
    }
    if arch.token_types:
        pixels["mm_token_type_ids"] = (ids == config.image_token_id).int()
    # Tiles across the leading dimensions (GraniteDocling's pixels are batch x tiles x ...).
    views = math.prod(pixels["pixel_values"].shape[:-3]) if arch.tile_size_key else 1
    return ModelInputs(
        input_ids=ids,
        pixel_views=pixels,
        mode="tiles" if arch.tile_size_key else "native",
        n_crops=views - 1,
        image_tokens=int((ids == config.image_token_id).sum()),
    )

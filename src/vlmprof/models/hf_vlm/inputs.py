"""A page turned into an `hf_vlm` model's inputs: the architecture's own image processor
(built offline from its class defaults) and a stand-in prompt with the image tokens laid
out as that architecture's processor would lay them out."""

from __future__ import annotations

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


def image_processor(
    arch: Architecture, preset: str, config: PretrainedConfig
) -> BaseImageProcessor:
    """The architecture's image processor with the preset's settings; a fixed-size encoder's
    tile size comes from its vision config, so the two always agree."""
    settings = dict(arch.processor[preset])
    if arch.tile_size_key is not None:
        side = getattr(config.vision_config, arch.tile_size_key)
        settings["size"] = {"height": side, "width": side}
    return getattr(transformers, arch.image_processor_class)(**settings)


def grid_image_tokens(config: PretrainedConfig, pixels: Mapping[str, torch.Tensor]) -> int:
    """Qwen2.5-VL, PaddleOCR-VL: one token per spatial_merge_size^2 patches of the page's
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


IMAGE_TOKENS: dict[str, Callable[[PretrainedConfig, Mapping[str, torch.Tensor]], int]] = {
    "qwen2_5_vl": grid_image_tokens,
    "got_ocr2": got_image_tokens,
    "lighton_ocr": lighton_image_tokens,
    "paddleocr_vl": grid_image_tokens,
}


def prompt_ids(arch: Architecture, config: PretrainedConfig, image_tokens: int) -> list[int]:
    """Stand-in text, then the image tokens (between the config's bounding ids, where the
    architecture has them), then more text."""
    image = [config.image_token_id] * image_tokens
    if arch.image_bounds is not None:
        start, end = (getattr(config, key) for key in arch.image_bounds)
        image = [start, *image, end]
    return [*PROMPT_BEFORE, *image, *PROMPT_AFTER]


def page_inputs(
    arch: Architecture, config: PretrainedConfig, processor: BaseImageProcessor, image: Image.Image
) -> ModelInputs:
    """Pixel tensors keyed by the model's forward argument names, and the prompt."""
    processed = processor(image.convert("RGB"), return_tensors="pt")
    # Only what the model's forward takes (GOT's processor also returns `num_patches`).
    pixels: dict[str, Any] = {
        key: processed[key] for key in processor.model_input_names if key in processed
    }
    image_tokens = IMAGE_TOKENS[arch.name](config, pixels)
    ids = torch.tensor([prompt_ids(arch, config, image_tokens)], dtype=torch.long)
    if arch.token_types:
        pixels["mm_token_type_ids"] = (ids == config.image_token_id).int()
    views = int(pixels["pixel_values"].shape[0]) if arch.tile_size_key else 1
    return ModelInputs(
        input_ids=ids,
        pixel_views=pixels,
        mode="tiles" if arch.tile_size_key else "native",
        n_crops=views - 1,
        image_tokens=image_tokens,
    )

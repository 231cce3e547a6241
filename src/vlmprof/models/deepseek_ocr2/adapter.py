"""DeepSeek-OCR-2 adapter: transformers' native model, preprocessing, prefill and decode.

The model is transformers' `DeepseekOcr2ForConditionalGeneration`, random-initialised from
a preset's dimensions or loaded from a local checkpoint directory. The pipeline's vision
slots are `sam`, `clip` and `projector`; DeepSeek-OCR-2's Qwen2 visual encoder, which
replaces CLIP, is timed in the `clip` slot, so every report and table reads it unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicCache, StaticCache
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2ForConditionalGeneration,
)

from vlmprof.device import resolve_dtype
from vlmprof.models.base import DecodeState, ModelInputs, ModelSpec
from vlmprof.models.deepseek_ocr.adapter import DeepseekOcrAdapter
from vlmprof.models.deepseek_ocr.checkpoint import HfPromptTokenizer
from vlmprof.models.deepseek_ocr2.checkpoint import load_checkpoint
from vlmprof.models.deepseek_ocr2.dims import DeepseekOcr2Dims, preset_dims
from vlmprof.models.deepseek_ocr2.model import build_module
from vlmprof.models.deepseek_ocr2.preprocess import prepare_views
from vlmprof.models.implementation import upcast
from vlmprof.models.prompt_tokenizer import StandInTokenizer

STAGE_MODULES = {
    "model.vision_tower.sam_encoder": "sam",
    "model.vision_tower.vision_encoder": "clip",  # the Qwen2 visual encoder, in CLIP's slot
    "model.multi_modal_projector": "projector",
}


class DeepseekOcr2Adapter(DeepseekOcrAdapter):
    """DeepSeek-OCR-2 with random weights at a preset's dimensions, or a local checkpoint's.

    Tokenizer, preprocessing flow, decode paths and switches are DeepSeek-OCR's; the model,
    its views, stage modules and forward calls are DeepSeek-OCR-2's.
    """

    name = "deepseek_ocr2"
    stage_map = STAGE_MODULES
    prepare_views = staticmethod(prepare_views)

    def __init__(
        self,
        spec: ModelSpec,
        dims: DeepseekOcr2Dims,
        module: DeepseekOcr2ForConditionalGeneration,
        tokenizer: StandInTokenizer | HfPromptTokenizer | None = None,
    ):
        super().__init__(spec, dims, module, tokenizer)  # type: ignore[arg-type]
        # The model finds image positions by this id, so it must be the prompt's.
        module.config.image_token_id = self.image_token_id

    def text_config(self) -> Any:
        """The decoder's transformers config (what a static KV cache is shaped by)."""
        return self.module.config.text_config

    def decoder_layer_paths(self) -> tuple[str, ...]:
        """Module paths of the decoder layers (what `compile: decoder` wraps)."""
        layers = self.module.model.language_model.layers
        return tuple(f"model.language_model.layers.{i}" for i in range(len(layers)))

    @classmethod
    def build(cls, spec: ModelSpec) -> DeepseekOcr2Adapter:
        """Build from `spec.checkpoint` if set, else the preset with its overrides (random)."""
        if spec.checkpoint:
            parts = load_checkpoint(spec.checkpoint, spec)
            return cls(spec, parts.dims, upcast(parts.module, spec.upcast), parts.tokenizer)
        dims = preset_dims(spec.preset, dict(spec.overrides))
        module = build_module(
            dims,
            spec.device,
            resolve_dtype(spec.dtype, spec.device),
            spec.attn_implementation,
            spec.experts_implementation,
            spec.seed,
        )
        return cls(spec, dims, upcast(module, spec.upcast))

    def prefill(self, inputs: ModelInputs, new_tokens: int) -> tuple[torch.Tensor, DecodeState]:
        """The model's own forward: vision, image tokens into the prompt, the decoder."""
        crops = inputs.pixel_views.get("crops")
        cache = self.new_cache(inputs.prefill_len, new_tokens)
        out = self.module(
            input_ids=inputs.input_ids,
            pixel_values=inputs.pixel_views["global"],
            pixel_values_local=crops,
            num_local_patches=None if crops is None else [inputs.n_crops],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1], DecodeState(cache=cache, position=inputs.prefill_len)

    def _step(
        self, token: torch.Tensor, cache: DynamicCache | StaticCache, pads: torch.Tensor | None
    ) -> torch.Tensor:
        """One decode step; positions come from the cache, so a CUDA graph can replay it
        (one page: `pads` is None)."""
        out = self.module(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    def describe(self) -> dict[str, Any]:
        """DeepSeek-OCR's description plus the stage modules (the encoder in CLIP's slot)."""
        return {**super().describe(), "stage_modules": dict(STAGE_MODULES)}

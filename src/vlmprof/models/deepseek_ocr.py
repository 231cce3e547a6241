"""DeepSeek-OCR adapter: builds the model, preprocesses pages, runs prefill and decode."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from PIL import Image
from transformers.cache_utils import DynamicCache

from vlmprof.models.base import DecodeState, ModelAdapter, ModelInputs, ModelSpec
from vlmprof.models.deepseek_ocr_checkpoint import HfPromptTokenizer, load_checkpoint
from vlmprof.models.deepseek_ocr_dims import DeepseekOcrDims, preset_dims
from vlmprof.models.deepseek_ocr_model import DeepseekOcrForProfiling
from vlmprof.models.deepseek_ocr_preprocess import prepare_views
from vlmprof.models.deepseek_ocr_views import plan_views
from vlmprof.models.prompt_tokenizer import (
    DOCUMENT_PROMPT,
    EOS_ID,
    IMAGE_TOKEN_ID,
    StandInTokenizer,
    prompt_length,
)
from vlmprof.runtime.device import resolve_dtype

STAGE_MODULES = {
    "model.sam_model": "sam",
    "model.vision_model": "clip",
    "model.projector": "projector",
}


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Construct modules directly in `dtype` (no fp32 copy of a multi-GB model)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_module(
    dims: DeepseekOcrDims,
    device: str | torch.device,
    dtype: torch.dtype,
    attn_implementation: str = "sdpa",
    experts_implementation: str = "eager",
    seed: int = 0,
) -> DeepseekOcrForProfiling:
    """Random-initialised model on `device` (use "meta" to count without allocating)."""
    torch.manual_seed(seed)
    with torch.device(device), default_dtype(dtype):
        module = DeepseekOcrForProfiling(dims, attn_implementation, experts_implementation)
    return module.eval()


def typical_prefill_len(sizes: Iterable[tuple[int, int]], mode: str, max_crops: int) -> int:
    """Median prefill length over pages of the given (width, height) in a mode."""
    lengths = [prompt_length(plan_views(w, h, mode, max_crops).image_tokens) for w, h in sizes]
    if not lengths:
        raise ValueError("no page sizes to compute a typical prefill length from")
    return int(statistics.median_low(lengths))


class DeepseekOcrAdapter(ModelAdapter):
    """DeepSeek-OCR with random weights at a preset's dimensions, or a local checkpoint's."""

    name = "deepseek_ocr"

    def __init__(
        self,
        spec: ModelSpec,
        dims: DeepseekOcrDims,
        module: DeepseekOcrForProfiling,
        tokenizer: StandInTokenizer | HfPromptTokenizer | None = None,
    ):
        self.spec = spec
        self.dims = dims
        self.module = module
        self.tokenizer = tokenizer or StandInTokenizer(dims.decoder.vocab)
        real = isinstance(self.tokenizer, HfPromptTokenizer)
        self.image_token_id = self.tokenizer.image_token_id if real else IMAGE_TOKEN_ID
        self.eos_token_id = self.tokenizer.eos_id if real else EOS_ID

    @classmethod
    def build(cls, spec: ModelSpec) -> DeepseekOcrAdapter:
        """Build from `spec.checkpoint` if set, else the preset with its overrides (random)."""
        if spec.checkpoint:
            return load_checkpoint(spec.checkpoint, spec)
        dims = preset_dims(spec.preset, dict(spec.overrides))
        dtype = resolve_dtype(spec.dtype, spec.device)
        module = build_module(
            dims,
            spec.device,
            dtype,
            spec.attn_implementation,
            spec.experts_implementation,
            spec.seed,
        )
        return cls(spec, dims, module)

    def preprocess(self, image: Image.Image) -> ModelInputs:
        """Views, normalised pixels and the prompt with the right number of image tokens."""
        views = prepare_views(image, self.spec.mode, self.spec.max_crops)
        ids = self.tokenizer.prompt_ids(DOCUMENT_PROMPT, views.plan.image_tokens)
        pixels = {"global": views.global_view}
        if views.crops is not None:
            pixels["crops"] = views.crops
        return ModelInputs(
            input_ids=torch.tensor([ids], dtype=torch.long),
            pixel_views=pixels,
            mode=views.plan.mode,
            n_crops=views.plan.n_crops,
            image_tokens=views.plan.image_tokens,
            tiles=(views.plan.tiles_w, views.plan.tiles_h),
        )

    def stage_modules(self) -> dict[str, str]:
        """Vision sub-stages by module path, as named in the reference checkpoint."""
        return dict(STAGE_MODULES)

    def prefill(self, inputs: ModelInputs) -> tuple[torch.Tensor, DecodeState]:
        """Vision encoder, prompt embedding and decoder over the whole prompt."""
        model = self.module.model
        image_embeds = model.image_embeddings(
            inputs.pixel_views["global"], inputs.pixel_views.get("crops"), *inputs.tiles
        )
        embeds = self.module.prompt_embeddings(inputs.input_ids, self.image_token_id, image_embeds)
        cache = DynamicCache(config=model.config)
        logits = self.module.decoder_forward(embeds, cache)
        return logits, DecodeState(cache=cache, position=inputs.prefill_len)

    def decode_step(self, token: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """Embed one token and run it through the decoder with the KV cache."""
        embeds = self.module.model.embed_tokens(token)
        logits = self.module.decoder_forward(embeds, state.cache)
        state.position += 1
        return logits

    def describe(self) -> dict[str, Any]:
        """Model name, preset, dims and implementation switches."""
        return {
            "model": self.name,
            "preset": self.spec.preset,
            "dims": self.dims.to_dict(),
            "attn_implementation": self.spec.attn_implementation,
            "experts_implementation": self.spec.experts_implementation,
            "mode": self.spec.mode,
            "max_crops": self.spec.max_crops,
            "checkpoint": self.spec.checkpoint,
            "tokenizer": (
                "checkpoint's own"
                if isinstance(self.tokenizer, HfPromptTokenizer)
                else "stand-in (no real tokenizer available)"
            ),
        }

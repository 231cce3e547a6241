"""DeepSeek-OCR adapter: builds the model, preprocesses pages, runs prefill and decode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from transformers.cache_utils import DynamicCache, StaticCache

from vlmprof.device import resolve_dtype
from vlmprof.models.base import DecodeState, ModelAdapter, ModelInputs, ModelSpec
from vlmprof.models.deepseek_ocr.checkpoint import HfPromptTokenizer, load_checkpoint
from vlmprof.models.deepseek_ocr.device_preprocess import prepare_views_on_device
from vlmprof.models.deepseek_ocr.dims import DeepseekOcrDims, preset_dims
from vlmprof.models.deepseek_ocr.model import DeepseekOcrForProfiling, build_module
from vlmprof.models.deepseek_ocr.preprocess import PreparedViews, prepare_views
from vlmprof.models.implementation import compile_parts, is_moe, perturb_weight, upcast
from vlmprof.models.padded_batch import left_pad, padded_attention
from vlmprof.models.prompt_tokenizer import (
    DOCUMENT_PROMPT,
    EOS_ID,
    IMAGE_TOKEN_ID,
    StandInTokenizer,
)
from vlmprof.models.sam_attention import cache_relative_positions, fold_relative_positions
from vlmprof.models.shape_graphs import graph_parts
from vlmprof.models.static_decode import StaticDecodePath

STAGE_MODULES = {
    "model.sam_model": "sam",
    "model.vision_model": "clip",
    "model.projector": "projector",
}


class DeepseekOcrAdapter(StaticDecodePath, ModelAdapter):
    """DeepSeek-OCR with random weights at a preset's dimensions, or a local checkpoint's."""

    name = "deepseek_ocr"
    # Vision sub-stages by module path, as named in the reference checkpoint.
    stage_map: dict[str, str] = STAGE_MODULES
    # Page -> views in this model's resolution modes.
    prepare_views = staticmethod(prepare_views)

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
        self.init_decode_path(self._step)
        self._apply_switches()

    @property
    def text_tokenizer(self) -> str:
        """The checkpoint's own tokenizer where it has one, else the stand-in."""
        return "model's own" if isinstance(self.tokenizer, HfPromptTokenizer) else "stand-in"

    def count_text_tokens(self, text: str) -> int:
        """Tokens the prompt's tokenizer (`text_tokenizer`) makes of `text`."""
        return self.tokenizer.count_tokens(text)

    def text_config(self) -> Any:
        """The decoder's transformers config (what a static KV cache is shaped by)."""
        return self.module.model.config

    def decoder_layer_paths(self) -> tuple[str, ...]:
        """Module paths of the decoder layers (what `compile: decoder` wraps)."""
        return tuple(f"model.layers.{i}" for i in range(len(self.module.model.layers)))

    def router_paths(self) -> tuple[str, ...]:
        """Module paths of the decoder's MoE routers (what `routing: fused` compiles)."""
        layers = self.decoder_layer_paths()
        return tuple(f"{path}.mlp.gate" for path in layers if is_moe(self.module, path))

    def _apply_switches(self) -> None:
        """Fold SAM's relative positions if asked, torch.compile the parts `spec.compile`
        names (and the routers with `routing: fused`), then replay the vision stages from
        CUDA graphs if asked (compiled code is captured too); perturb the head if asked
        (tests)."""
        if self.spec.sam_attention == "folded":
            fold_relative_positions(self.module)
        vision, decoder = tuple(self.stage_map), self.decoder_layer_paths()
        targets = {"none": (), "vision": vision, "decoder": decoder, "all": vision + decoder}
        compile_parts(self.module, targets[self.spec.compile])
        if self.spec.routing == "fused":
            compile_parts(self.module, self.router_paths(), "model.routing")
        if self.spec.vision == "cuda_graph":
            cache_relative_positions(self.module)  # its host-built index blocks capture
            graph_parts(self.module, vision, self.graph_pool)
        if self.spec.perturb:
            perturb_weight(self.module.lm_head.weight, self.spec.perturb, self.spec.seed)

    @classmethod
    def build(cls, spec: ModelSpec) -> DeepseekOcrAdapter:
        """Build from `spec.checkpoint` if set, else the preset with its overrides (random)."""
        if spec.checkpoint:
            parts = load_checkpoint(spec.checkpoint, spec)
            return cls(spec, parts.dims, upcast(parts.module, spec.upcast), parts.tokenizer)
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
        return cls(spec, dims, upcast(module, spec.upcast))

    def preprocess(self, image: Image.Image) -> ModelInputs:
        """Views, normalised pixels and the prompt with the right number of image tokens."""
        return self._inputs(self.prepare_views(image, self.spec.mode, self.spec.max_crops))

    def preprocess_on_device(self, image: Image.Image) -> ModelInputs:
        """`preprocess` with the views made on the model's device (`preprocess: gpu`)."""
        if self.prepare_views is not prepare_views:
            raise ValueError(
                f"preprocess: gpu makes deepseek_ocr's views; {self.name} cuts its own"
            )
        mode, crops = self.spec.mode, self.spec.max_crops
        return self._inputs(prepare_views_on_device(image, mode, crops, self.device))

    def _inputs(self, views: PreparedViews) -> ModelInputs:
        """The model inputs of a page's views: its pixels and the prompt."""
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
        """Vision sub-stages by module path."""
        return dict(self.stage_map)

    def prefill(self, inputs: ModelInputs, new_tokens: int) -> tuple[torch.Tensor, DecodeState]:
        """Vision encoder, prompt embedding and decoder over the whole prompt."""
        return self.prefill_batch([inputs], new_tokens)

    def prefill_batch(
        self, batch: Sequence[ModelInputs], new_tokens: int
    ) -> tuple[torch.Tensor, DecodeState]:
        """Vision over every page's views at once, each page's prompt embedding, then the
        decoder over the prompts: one page as it is, several left-padded into one batch."""
        if not self.pads_batches:
            return super().prefill_batch(batch, new_tokens)
        views = [(i.pixel_views["global"], i.pixel_views.get("crops"), *i.tiles) for i in batch]
        image_embeds = self.module.model.batch_embeddings(views)
        embeds = [
            self.module.prompt_embeddings(inputs.input_ids, self.image_token_id, image)
            for inputs, image in zip(batch, image_embeds, strict=True)
        ]
        if len(batch) == 1:
            cache = self.new_cache(batch[0].prefill_len, new_tokens)
            logits = self.module.decoder_forward(embeds[0], cache)
            return logits, DecodeState(cache=cache, position=batch[0].prefill_len)
        padded, pads = left_pad(embeds)
        cache = self.new_cache(padded.shape[1], new_tokens, len(batch))
        logits = self._padded_decoder(padded, cache, pads)
        return logits, DecodeState(cache=cache, position=padded.shape[1], pads=pads)

    def _step(
        self, token: torch.Tensor, cache: DynamicCache | StaticCache, pads: torch.Tensor | None
    ) -> torch.Tensor:
        """One decode step; positions come from the cache, so a CUDA graph can replay it."""
        embeds = self.module.model.embed_tokens(token)
        if pads is None:
            return self.module.decoder_forward(embeds, cache)
        return self._padded_decoder(embeds, cache, pads)

    def _padded_decoder(
        self, embeds: torch.Tensor, cache: DynamicCache | StaticCache, pads: torch.Tensor
    ) -> torch.Tensor:
        """The decoder over a left-padded batch, its mask and positions counted from the
        cache's fill (a device tensor for a static cache, so a graph replay advances)."""
        length = embeds.shape[1]
        slots = torch.arange(length, device=embeds.device) + cache.get_seq_length()
        kv_length, _ = cache.get_mask_sizes(length, 0)
        mask, positions = padded_attention(pads, slots, kv_length, embeds.dtype)
        return self.module.decoder_forward(embeds, cache, mask, positions)

    def describe(self) -> dict[str, Any]:
        """Model name, preset, dims and implementation switches."""
        return {
            "model": self.name,
            "preset": self.spec.preset,
            "dims": self.dims.to_dict(),
            "attn_implementation": self.spec.attn_implementation,
            "experts_implementation": self.spec.experts_implementation,
            "decode": self.spec.decode,
            "compile": self.spec.compile,
            "sam_attention": self.spec.sam_attention,
            "vision": self.spec.vision,
            "mode": self.spec.mode,
            "max_crops": self.spec.max_crops,
            "checkpoint": self.spec.checkpoint,
            "tokenizer": (
                "checkpoint's own"
                if isinstance(self.tokenizer, HfPromptTokenizer)
                else "stand-in (no real tokenizer available)"
            ),
        }

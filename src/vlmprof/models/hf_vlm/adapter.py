"""A transformers vision-language model (`model.architecture`) with seeded random weights or
a local checkpoint's, run through its own forward: the vision stages are timed by hooks on
its modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers
from PIL import Image
from transformers import PretrainedConfig
from transformers.cache_utils import DynamicCache, StaticCache
from transformers.image_processing_utils import BaseImageProcessor

from vlmprof.device import resolve_dtype
from vlmprof.models.base import DecodeState, ModelAdapter, ModelInputs, ModelSpec
from vlmprof.models.causal_lm import config_dims
from vlmprof.models.deepseek_ocr.model import default_dtype
from vlmprof.models.hf_vlm.architectures import Architecture, architecture, config_values
from vlmprof.models.hf_vlm.inputs import image_processor, page_inputs
from vlmprof.models.implementation import compile_parts, perturb_weight, upcast
from vlmprof.models.static_decode import StaticDecodePath

# An image processor's settings in a checkpoint directory (transformers' file name).
PROCESSOR_FILE = "preprocessor_config.json"
# Switches this adapter cannot take, at the values it runs (the released code's): they
# change our own module tree (deepseek_ocr's), which a transformers model does not have.
UNSUPPORTED_SWITCHES = {
    "routing": "eager",
    "sam_attention": "bias",
    "vision": "eager",
}


def build_config(arch: Architecture, spec: ModelSpec) -> PretrainedConfig:
    """The transformers config of the spec's preset and overrides, with its attention."""
    config = getattr(transformers, arch.config_class)(
        **config_values(arch, spec.preset, spec.overrides)
    )
    return with_attention(config, arch, spec)


def checkpoint_config(arch: Architecture, spec: ModelSpec) -> PretrainedConfig:
    """The config of the checkpoint directory (nothing is downloaded), with the attention
    `build_config` gives; a checkpoint of another architecture is refused."""
    config = getattr(transformers, arch.config_class).from_pretrained(
        spec.checkpoint, local_files_only=True
    )
    if config.model_type != arch.name:
        raise ValueError(
            f"model.checkpoint: {spec.checkpoint} holds a {config.model_type!r} model, not "
            f"model.architecture {arch.name!r}; set the architecture it holds"
        )
    return with_attention(config, arch, spec)


def with_attention(
    config: PretrainedConfig, arch: Architecture, spec: ModelSpec
) -> PretrainedConfig:
    """`config` with the spec's attention for the decoder and the vision tower's only one
    where it has one (else the spec's)."""
    vision = arch.vision_attention or spec.attn_implementation
    config._attn_implementation = {
        "": vision,
        "text_config": spec.attn_implementation,
        "vision_config": vision,
    }
    return config


def layer_paths(module: torch.nn.Module, paths: tuple[str, ...]) -> tuple[str, ...]:
    """Module paths with each ModuleList path replaced by its layers' paths (a ModuleList
    has no forward of its own to hook or compile)."""
    expanded: list[str] = []
    for path in paths:
        target = module.get_submodule(path)
        if isinstance(target, torch.nn.ModuleList):
            expanded.extend(f"{path}.{i}" for i in range(len(target)))
        else:
            expanded.append(path)
    return tuple(expanded)


class HfVlmAdapter(StaticDecodePath, ModelAdapter):
    """A transformers VLM from the architecture table: prefill and decode through the
    model's own forward, with a growing KV cache (released code) or a static one
    (`decode: static`, `cuda_graph`)."""

    name = "hf_vlm"

    def __init__(
        self,
        spec: ModelSpec,
        arch: Architecture,
        module: torch.nn.Module,
        processor: BaseImageProcessor,
    ) -> None:
        self.spec = spec
        self.arch = arch
        self.module = module
        self.config = module.config
        self.processor = processor
        eos = getattr(self.config.text_config, "eos_token_id", None)  # GLM-OCR may have none
        self.eos_token_id = eos if isinstance(eos, int) else None
        # Multimodal rope (Qwen2.5-VL, PaddleOCR-VL, GLM-OCR, HunYuanVL): each prefill keeps
        # its rope offset, which the static step reads from `rope_delta`, a buffer of its own
        # whose address a captured graph keeps (the model makes a new tensor every prefill).
        self.rope_3d = hasattr(module.model, "rope_deltas")
        self.rope_delta: torch.Tensor | None = None
        self.init_decode_path(self._static_step)
        self._apply_switches()

    @classmethod
    def build(cls, spec: ModelSpec) -> HfVlmAdapter:
        """Random weights seeded by `spec.seed`, made directly on the device in the dtype, or
        the weights of `spec.checkpoint`."""
        arch = architecture(spec.architecture)
        changed = [k for k, v in UNSUPPORTED_SWITCHES.items() if getattr(spec, k) != v]
        if changed:
            raise ValueError(
                f"{', '.join(changed)}: hf_vlm runs the model's own forward; these switches "
                "apply to deepseek_ocr's module tree only"
            )
        if spec.trust_remote_code:
            raise ValueError(
                "model.trust_remote_code: hf_vlm runs transformers' own classes; drop it"
            )
        config = checkpoint_config(arch, spec) if spec.checkpoint else build_config(arch, spec)
        dtype = resolve_dtype(spec.dtype, spec.device)
        model_class = getattr(transformers, arch.model_class)
        if spec.checkpoint and spec.device != "meta":
            # Loaded on the host, then moved (a device_map would need accelerate).
            module = model_class.from_pretrained(
                spec.checkpoint, config=config, local_files_only=True, dtype=dtype
            ).to(spec.device)
        else:  # random weights, or on the meta device the module tree alone
            torch.manual_seed(spec.seed)
            with torch.device(spec.device), default_dtype(dtype):
                module = model_class(config)
        processor = image_processor(arch, spec.preset, module.config)
        if spec.checkpoint and (Path(spec.checkpoint) / PROCESSOR_FILE).is_file():
            processor = type(processor).from_pretrained(spec.checkpoint, local_files_only=True)
        return cls(spec, arch, upcast(module.eval(), spec.upcast), processor)

    def _apply_switches(self) -> None:
        """torch.compile the parts `spec.compile` names; perturb the head if asked (tests)."""
        vision = (*self.vision_paths(), *self.arch.projector)
        decoder = layer_paths(self.module, (self.arch.decoder_layers,))
        targets = {"none": (), "vision": vision, "decoder": decoder, "all": vision + decoder}
        compile_parts(self.module, targets[self.spec.compile])
        if self.spec.perturb:
            perturb_weight(self.module.lm_head.weight, self.spec.perturb, self.spec.seed)

    def vision_paths(self) -> tuple[str, ...]:
        """Module paths of the vision encoder without its projector."""
        return layer_paths(self.module, self.arch.vision)

    def preprocess(self, image: Image.Image) -> ModelInputs:
        """The architecture's processor on the page, and the prompt with its image tokens."""
        return page_inputs(self.arch, self.config, self.processor, image)

    def stage_modules(self) -> dict[str, str]:
        """The vision encoder as `clip` and the projector's modules as `projector`.

        stages.py names the vision parts after DeepSeek-OCR (sam, clip, projector); `clip`
        is "the vision encoder" there (DeepSeek-OCR-2 puts its Qwen2 encoder in that slot
        too), so these encoders take it and `sam` stays empty.
        """
        return {
            **dict.fromkeys(self.vision_paths(), "clip"),
            **dict.fromkeys(self.arch.projector, "projector"),
        }

    def text_config(self) -> PretrainedConfig:
        """The decoder's transformers config (what a KV cache is shaped by)."""
        return self.config.text_config

    def prefill(self, inputs: ModelInputs, new_tokens: int) -> tuple[torch.Tensor, DecodeState]:
        """The model's forward over the whole prompt with its pixels: the last logits; on
        the static path a 3D-rope model's rope offset is copied for the decode steps."""
        cache = self.new_cache(inputs.prefill_len, new_tokens)
        logits = self.module(
            input_ids=inputs.input_ids,
            **inputs.pixel_views,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]
        if self.static is not None and self.rope_3d:
            delta = self.module.model.rope_deltas
            if self.rope_delta is None:
                self.rope_delta = delta.clone()
            else:
                self.rope_delta.copy_(delta)
        return logits, DecodeState(cache=cache, position=inputs.prefill_len)

    def _step(
        self, token: torch.Tensor, cache: DynamicCache, _pads: torch.Tensor | None
    ) -> torch.Tensor:
        """The released step: one token through the forward with the cache; a 3D-rope
        forward places it with the rope offset its prefill kept (`rope_deltas`), as in its
        own generate."""
        logits = self.module(input_ids=token, past_key_values=cache, use_cache=True).logits
        return logits[:, -1, :]

    def _static_step(
        self, token: torch.Tensor, cache: StaticCache, _pads: torch.Tensor | None
    ) -> torch.Tensor:
        """One token through the forward at the position the static cache holds on the
        device (no host value, so a graph replay advances like an eager call); a 3D-rope
        model's position is shifted by its prefill's rope offset on every rope axis (the text
        model spreads one row of positions over its own axes: three, or HunYuanVL's four)."""
        positions = token.new_zeros(token.shape) + cache.get_seq_length()
        if self.rope_3d:
            positions = positions + self.rope_delta
        return self.module(
            input_ids=token,
            past_key_values=cache,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]

    def describe(self) -> dict[str, Any]:
        """Model, architecture, preset, main dimensions and the switches it ran with."""
        text, vision = self.config.text_config, self.config.vision_config
        return {
            "model": self.name,
            "architecture": self.arch.name,
            "preset": self.spec.preset,
            "overrides": dict(self.spec.overrides),
            "dims": {
                "text": config_dims(text),
                "vision": {
                    key: getattr(vision, key, None)
                    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads")
                },
            },
            "params": sum(p.numel() for p in self.module.parameters()),
            "stage_modules": self.stage_modules(),
            "attn_implementation": self.spec.attn_implementation,
            "vision_attn_implementation": self.arch.vision_attention
            or self.spec.attn_implementation,
            "compile": self.spec.compile,
            "decode": self.spec.decode,
            "perturb": self.spec.perturb,
            "image_processor": type(self.processor).__name__,
            "tokenizer": "none (stand-in prompt ids around the image tokens)",
        }

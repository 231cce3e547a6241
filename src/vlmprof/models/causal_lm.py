"""A generic text-only causal LM adapter built from a transformers config.

It profiles prefill over a fixed prompt of N text tokens and the greedy decode loop; the
page image is ignored (the run record still says which page it was), and there are no
vision sub-stages. The model is `AutoModelForCausalLM.from_config` with seeded random
weights, from a preset (a Llama-style shape) or from `model.checkpoint`: a local directory
whose `config.json` is read, and whose `*.safetensors` weights are loaded when present.
`model.overrides.decoder` passes transformers config keys (e.g. `num_hidden_layers`), plus
`prompt_tokens`, the prefill length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig
from transformers.cache_utils import DynamicCache

from vlmprof.device import resolve_dtype
from vlmprof.models.base import DecodeState, ModelAdapter, ModelInputs, ModelSpec
from vlmprof.models.implementation import upcast

PROMPT_TOKENS = 256
# The prompt is the same whatever the weights' seed, so runs differ only in the model.
PROMPT_SEED = 0
# Llama-style shapes: `small` runs on one CPU core in well under a second per page; `full`
# is a Llama-3.2-1B-sized decoder.
PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "model_type": "llama",
        "vocab_size": 4096,
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
    },
    "full": {
        "model_type": "llama",
        "vocab_size": 128256,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
    },
}


def causal_lm_config(spec: ModelSpec) -> tuple[PretrainedConfig, int]:
    """The transformers config and the prompt length the spec asks for."""
    overrides = dict(spec.overrides.get("decoder", {}))
    prompt_tokens = int(overrides.pop("prompt_tokens", PROMPT_TOKENS))
    unknown = sorted(set(spec.overrides) - {"decoder"})
    if unknown:
        raise ValueError(f"model.overrides.{unknown[0]}: causal_lm takes only decoder overrides")
    if spec.checkpoint:
        directory = Path(spec.checkpoint)
        if not (directory / "config.json").is_file():
            raise ValueError(f"model.checkpoint: {directory} has no config.json")
        config = AutoConfig.from_pretrained(str(directory), local_files_only=True, **overrides)
    else:
        if spec.preset not in PRESETS:
            raise ValueError(
                f"model.preset: unknown preset {spec.preset!r} for causal_lm; "
                f"allowed: {', '.join(PRESETS)}"
            )
        values = {**PRESETS[spec.preset], **overrides}
        config = AutoConfig.for_model(values.pop("model_type"), **values)
    if not 1 <= prompt_tokens <= config.max_position_embeddings:
        raise ValueError(
            f"model.overrides.decoder.prompt_tokens: {prompt_tokens} must be between 1 and "
            f"max_position_embeddings ({config.max_position_embeddings})"
        )
    return config, prompt_tokens


# The decoder dimensions an adapter's description names.
DIM_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
)


def config_dims(config: PretrainedConfig) -> dict[str, Any]:
    """A decoder config's main dimensions (None where it lacks one)."""
    return {key: getattr(config, key, None) for key in DIM_KEYS}


class CausalLmAdapter(ModelAdapter):
    """Any transformers causal LM: prefill over N prompt tokens, then greedy decode."""

    name = "causal_lm"

    def __init__(self, spec: ModelSpec, module: torch.nn.Module, prompt_tokens: int) -> None:
        self.spec = spec
        self.module = module
        self.config = module.config
        self.prompt_tokens = prompt_tokens
        eos = self.config.eos_token_id
        self.eos_token_id = eos if isinstance(eos, int) else None

    @classmethod
    def build(cls, spec: ModelSpec) -> CausalLmAdapter:
        """Random weights (seeded) from the config, or the checkpoint's own weights."""
        config, prompt_tokens = causal_lm_config(spec)
        config._attn_implementation = spec.attn_implementation
        dtype = resolve_dtype(spec.dtype, spec.device)
        if spec.checkpoint and any(Path(spec.checkpoint).glob("*.safetensors")):
            module = AutoModelForCausalLM.from_pretrained(
                spec.checkpoint, config=config, dtype=dtype, local_files_only=True
            ).to(spec.device)
        else:
            torch.manual_seed(spec.seed)
            with torch.device(spec.device):
                module = AutoModelForCausalLM.from_config(config, dtype=dtype)
        return cls(spec, upcast(module.eval(), spec.upcast), prompt_tokens)

    def preprocess(self, image: Image.Image) -> ModelInputs:
        """A fixed prompt of `prompt_tokens` random ids; the image is not used."""
        generator = torch.Generator().manual_seed(PROMPT_SEED)
        ids = torch.randint(0, self.config.vocab_size, (1, self.prompt_tokens), generator=generator)
        return ModelInputs(
            input_ids=ids, pixel_views={}, mode="text", n_crops=0, image_tokens=0, tiles=(0, 0)
        )

    def stage_modules(self) -> dict[str, str]:
        """No sub-stages: only prefill and decode are timed."""
        return {}

    def prefill(self, inputs: ModelInputs, new_tokens: int) -> tuple[torch.Tensor, DecodeState]:
        """The whole prompt through the model; logits of the last position (its cache grows,
        whatever `new_tokens`)."""
        cache = DynamicCache(config=self.config)
        logits = self.module(
            input_ids=inputs.input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1
        ).logits[:, -1, :]
        return logits, DecodeState(cache=cache, position=inputs.prefill_len)

    def decode_step(self, token: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """One token through the model with the KV cache."""
        logits = self.module(input_ids=token, past_key_values=state.cache, use_cache=True).logits
        state.position += 1
        return logits[:, -1, :]

    def describe(self) -> dict[str, Any]:
        """Model type, main dimensions, prompt length and where the weights came from."""
        config = self.config
        return {
            "model": self.name,
            "preset": None if self.spec.checkpoint else self.spec.preset,
            "checkpoint": self.spec.checkpoint,
            "model_type": config.model_type,
            "dims": config_dims(config),
            "params": sum(p.numel() for p in self.module.parameters()),
            "prompt_tokens": self.prompt_tokens,
            "attn_implementation": self.spec.attn_implementation,
            "tokenizer": "none (random prompt ids; prefill over prompt_tokens)",
        }

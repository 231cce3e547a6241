"""DeepSeek-OCR-2 as transformers' own `DeepseekOcr2ForConditionalGeneration`, from our dims.

Every part is transformers' class: SAM ViT-B with its compressor, the Qwen2 visual encoder
with its learned queries and hybrid mask (bidirectional over SAM tokens, causal over the
queries), the linear projector and the DeepSeek-3B-MoE decoder. Only the configuration is
ours, built from `DeepseekOcr2Dims`; the SAM and decoder configs are the ones DeepSeek-OCR
uses. Module names are transformers': `model.vision_tower.sam_encoder`,
`model.vision_tower.vision_encoder`, `model.multi_modal_projector`,
`model.language_model.layers.N`, `lm_head`.
"""

from __future__ import annotations

import torch
from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import (
    DeepseekOcr2Config,
    DeepseekOcr2VisionConfig,
    DeepseekOcr2VisionEncoderConfig,
)
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2ForConditionalGeneration,
)

from vlmprof.models.deepseek_ocr.model import INIT_STD, default_dtype, sam_config, text_config
from vlmprof.models.deepseek_ocr2.dims import DeepseekOcr2Dims
from vlmprof.models.prompt_tokenizer import IMAGE_TOKEN_ID

# Qwen2-0.5B's settings, which the reference encoder builder keeps; they change no shape.
ENCODER_ROPE_THETA = 1_000_000.0
ENCODER_MAX_POSITIONS = 131_072
ENCODER_RMS_EPS = 1e-6


def encoder_config(
    dims: DeepseekOcr2Dims, attn_implementation: str
) -> DeepseekOcr2VisionEncoderConfig:
    """transformers config of the Qwen2 visual encoder (no token embedding of its own)."""
    enc = dims.encoder
    return DeepseekOcr2VisionEncoderConfig(
        hidden_size=enc.width,
        num_hidden_layers=enc.depth,
        num_attention_heads=enc.heads,
        num_key_value_heads=enc.kv_heads,
        intermediate_size=enc.ffn,
        max_position_embeddings=ENCODER_MAX_POSITIONS,
        rms_norm_eps=ENCODER_RMS_EPS,
        rope_parameters={"rope_type": "default", "rope_theta": ENCODER_ROPE_THETA},
        initializer_range=INIT_STD,
        attn_implementation=attn_implementation,
    )


def model_config(
    dims: DeepseekOcr2Dims,
    attn_implementation: str = "sdpa",
    experts_implementation: str = "eager",
) -> DeepseekOcr2Config:
    """The whole model's transformers config (the adapter sets the prompt's image token id)."""
    vision = DeepseekOcr2VisionConfig(
        sam_config=sam_config(dims, attn_implementation),  # reads dims.sam only
        encoder_config=encoder_config(dims, attn_implementation),
    )
    return DeepseekOcr2Config(
        vision_config=vision,
        text_config=text_config(dims, attn_implementation, experts_implementation),
        image_token_id=IMAGE_TOKEN_ID,
        tie_word_embeddings=False,
        # Set on the whole model: the sub-configs' own settings do not survive composition.
        attn_implementation=attn_implementation,
        experts_implementation=experts_implementation,
    )


def build_module(
    dims: DeepseekOcr2Dims,
    device: str | torch.device,
    dtype: torch.dtype,
    attn_implementation: str = "sdpa",
    experts_implementation: str = "eager",
    seed: int = 0,
) -> DeepseekOcr2ForConditionalGeneration:
    """Random-initialised model on `device` (use "meta" to count without allocating)."""
    config = model_config(dims, attn_implementation, experts_implementation)
    torch.manual_seed(seed)
    with torch.device(device), default_dtype(dtype):
        module = DeepseekOcr2ForConditionalGeneration(config)
    return module.eval()

"""DeepSeek-OCR-2 dimensions: the published `full` preset and a fast `small` preset.

DeepSeek-OCR-2 keeps DeepSeek-OCR's SAM ViT-B (its last compressor conv narrowed to 896
channels) and its DeepSeek-3B-MoE decoder, and replaces CLIP ViT-L by a Qwen2-0.5B-style
visual encoder that reads the SAM tokens plus as many learned queries and keeps the query
outputs. The SAM and decoder parts are DeepSeek-OCR's own dataclasses. Like
`deepseek_ocr.dims`, this module needs no transformers, so the report can read it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vlmprof.models.deepseek_ocr.dims import PRESETS as OCR1_PRESETS
from vlmprof.models.deepseek_ocr.dims import DecoderDims, SamDims, named_preset, replace_parts

# transformers' DeepseekOcr2VisionModel has query tables for 144 (768 px) and 256 (1024 px)
# SAM tokens only, which holds for a 16-pixel patch and the two stride-2 convolutions.
SAM_PATCH = 16


@dataclass(frozen=True)
class EncoderDims:
    """Qwen2 visual encoder: pre-norm RMSNorm layers, grouped-query attention, SwiGLU MLP."""

    width: int = 896
    depth: int = 24
    heads: int = 14
    kv_heads: int = 2
    ffn: int = 4864

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.width // self.heads


@dataclass(frozen=True)
class DeepseekOcr2Dims:
    """All dimensions of one DeepSeek-OCR-2 variant."""

    sam: SamDims = field(default_factory=lambda: SamDims(compressor_channels=(512, 896)))
    encoder: EncoderDims = field(default_factory=EncoderDims)
    decoder: DecoderDims = field(default_factory=DecoderDims)

    def __post_init__(self) -> None:
        checks = (
            (
                self.sam.compressor_channels[-1] == self.encoder.width,
                "sam.compressor_channels[-1] must equal encoder.width (the encoder reads SAM "
                f"tokens), got {self.sam.compressor_channels[-1]} and {self.encoder.width}",
            ),
            (
                self.sam.patch == SAM_PATCH,
                f"sam.patch must be {SAM_PATCH}: the encoder's query tables hold 144 and 256 "
                f"queries (768 and 1024 pixel views), got {self.sam.patch}",
            ),
            (
                self.encoder.width % self.encoder.heads == 0
                and self.encoder.heads % self.encoder.kv_heads == 0,
                "encoder.width must be a multiple of encoder.heads, and encoder.heads of "
                "encoder.kv_heads",
            ),
            (
                self.decoder.heads * self.decoder.head_dim == self.decoder.hidden,
                "decoder.head_dim must be decoder.hidden / decoder.heads (transformers derives "
                "it so)",
            ),
            (
                self.decoder.heads % self.decoder.kv_heads == 0,
                "decoder.heads must be a multiple of decoder.kv_heads",
            ),
            (
                self.decoder.experts_per_token <= self.decoder.routed_experts,
                "decoder.experts_per_token must not exceed decoder.routed_experts",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"model.overrides: {message}")

    @property
    def projector_in(self) -> int:
        """Width of one vision feature: the encoder's query output."""
        return self.encoder.width

    @property
    def projector_out(self) -> int:
        """Width of one projected image token: the decoder's hidden size."""
        return self.decoder.hidden

    def with_overrides(self, overrides: dict[str, Any] | None) -> DeepseekOcr2Dims:
        """Return a copy with `{"sam": {...}, "encoder": {...}, "decoder": {...}}` applied."""
        return replace_parts(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for JSON and provenance)."""
        return dataclasses.asdict(self)


PRESETS: dict[str, DeepseekOcr2Dims] = {
    "full": DeepseekOcr2Dims(),
    # DeepSeek-OCR's small SAM and decoder, and an encoder of the same cut (2 layers of 128,
    # grouped-query like the full one), so one page runs in about the time of
    # DeepSeek-OCR's small preset.
    "small": DeepseekOcr2Dims(
        sam=OCR1_PRESETS["small"].sam,
        encoder=EncoderDims(width=128, depth=2, heads=4, kv_heads=2, ffn=512),
        decoder=OCR1_PRESETS["small"].decoder,
    ),
}


def preset_dims(preset: str, overrides: dict[str, Any] | None = None) -> DeepseekOcr2Dims:
    """Dimensions of a named preset with optional overrides."""
    return named_preset(PRESETS, preset, overrides)

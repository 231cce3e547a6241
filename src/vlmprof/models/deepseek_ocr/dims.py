"""DeepSeek-OCR dimensions: the published `full` preset and a fast `small` preset.

One frozen dataclass tree describes every shape of the model. The model builder, the
analytic FLOP formulas and the preprocessing all read it, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar


@dataclass(frozen=True)
class SamDims:
    """SAM ViT-B image encoder with its neck and the 16x convolutional compressor."""

    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    window: int = 14
    global_blocks: tuple[int, ...] = (2, 5, 8, 11)
    patch: int = 16
    pretrain_size: int = 1024
    neck_channels: int = 256
    compressor_channels: tuple[int, int] = (512, 1024)


@dataclass(frozen=True)
class ClipDims:
    """CLIP ViT-L encoder fed by SAM compressor features instead of pixels."""

    width: int = 1024
    depth: int = 24
    heads: int = 16
    ffn: int = 4096
    pos_grid: int = 16


@dataclass(frozen=True)
class DecoderDims:
    """DeepSeek-3B-MoE decoder: plain multi-head attention, 1 dense + N-1 MoE layers."""

    vocab: int = 129280
    hidden: int = 1280
    layers: int = 12
    heads: int = 10
    kv_heads: int = 10
    head_dim: int = 128
    dense_intermediate: int = 6848
    first_k_dense: int = 1
    moe_intermediate: int = 896
    routed_experts: int = 64
    experts_per_token: int = 6
    shared_experts: int = 2
    max_positions: int = 8192


@dataclass(frozen=True)
class DeepseekOcrDims:
    """All dimensions of one DeepSeek-OCR variant."""

    sam: SamDims = field(default_factory=SamDims)
    clip: ClipDims = field(default_factory=ClipDims)
    decoder: DecoderDims = field(default_factory=DecoderDims)

    def __post_init__(self) -> None:
        if self.sam.compressor_channels[-1] != self.clip.width:
            raise ValueError(
                "model.overrides: sam.compressor_channels[-1] must equal clip.width "
                f"(CLIP embeds SAM features), got {self.sam.compressor_channels[-1]} "
                f"and {self.clip.width}"
            )
        if self.decoder.experts_per_token > self.decoder.routed_experts:
            raise ValueError(
                "model.overrides: decoder.experts_per_token must not exceed decoder.routed_experts"
            )
        if self.decoder.heads % self.decoder.kv_heads:
            raise ValueError(
                "model.overrides: decoder.heads must be a multiple of decoder.kv_heads"
            )

    @property
    def projector_in(self) -> int:
        """Width of one vision feature: CLIP output concatenated with SAM features."""
        return self.clip.width + self.sam.compressor_channels[-1]

    @property
    def projector_out(self) -> int:
        """Width of one projected image token: the decoder's hidden size."""
        return self.decoder.hidden

    def with_overrides(self, overrides: dict[str, Any] | None) -> DeepseekOcrDims:
        """Return a copy with `{"sam": {...}, "clip": {...}, "decoder": {...}}` applied."""
        return replace_parts(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for JSON and provenance)."""
        return dataclasses.asdict(self)


def replace_parts(dims: Any, overrides: dict[str, Any] | None) -> Any:
    """`dims` (a dataclass of part dataclasses) with per-part field overrides applied.

    Unknown parts or fields raise a ValueError naming the key and the allowed ones; JSON
    lists become tuples so the result stays hashable.
    """
    if not overrides:
        return dims
    part_names = [f.name for f in dataclasses.fields(dims)]
    parts: dict[str, Any] = {}
    for part_name, values in overrides.items():
        if part_name not in part_names:
            raise ValueError(
                f"model.overrides.{part_name}: unknown part; allowed: {', '.join(part_names)}"
            )
        part = getattr(dims, part_name)
        allowed = {f.name for f in dataclasses.fields(part)}
        for key in values:
            if key not in allowed:
                raise ValueError(
                    f"model.overrides.{part_name}.{key}: unknown field; allowed: "
                    + ", ".join(sorted(allowed))
                )
        coerced = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        parts[part_name] = dataclasses.replace(part, **coerced)
    return dataclasses.replace(dims, **parts)


PRESETS: dict[str, DeepseekOcrDims] = {
    "full": DeepseekOcrDims(),
    # Same structure and code path, widths and depths cut so one page's prefill plus a
    # few dozen decode tokens runs in well under two seconds on one CPU core.
    "small": DeepseekOcrDims(
        sam=SamDims(
            width=64,
            depth=3,
            heads=2,
            mlp_dim=256,
            global_blocks=(2,),
            neck_channels=32,
            compressor_channels=(64, 128),
        ),
        clip=ClipDims(width=128, depth=2, heads=2, ffn=512),
        decoder=DecoderDims(
            vocab=4096,
            hidden=128,
            layers=3,
            heads=4,
            kv_heads=4,
            head_dim=32,
            dense_intermediate=384,
            moe_intermediate=64,
            routed_experts=8,
            experts_per_token=2,
            shared_experts=2,
        ),
    ),
}


class PresetDims(Protocol):
    """A model's dimensions: anything that can take per-part overrides."""

    def with_overrides(self, overrides: dict[str, Any] | None) -> Self:
        """A copy with the overrides applied (ValueError naming an unknown key)."""
        ...


Dims = TypeVar("Dims", bound=PresetDims)


def named_preset(
    presets: Mapping[str, Dims], preset: str, overrides: dict[str, Any] | None
) -> Dims:
    """A model's named preset with optional overrides, or a ValueError naming the key."""
    if preset not in presets:
        raise ValueError(f"model.preset: unknown preset {preset!r}; allowed: {', '.join(presets)}")
    return presets[preset].with_overrides(overrides)


def preset_dims(preset: str, overrides: dict[str, Any] | None = None) -> DeepseekOcrDims:
    """Dimensions of a named preset with optional overrides."""
    return named_preset(PRESETS, preset, overrides)

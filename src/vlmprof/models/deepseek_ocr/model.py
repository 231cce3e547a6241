"""DeepSeek-OCR as torch modules, built from its published dimensions with random weights.

SAM ViT-B with its compressor and the DeepSeek-3B-MoE decoder are transformers' own
`deepseek_ocr2` classes configured to DeepSeek-OCR's (v1) dimensions; CLIP ViT-L fed by SAM
features has no ready equivalent and is assembled here from transformers' CLIP encoder
layers. Module names follow the reference checkpoint (`model.sam_model`,
`model.vision_model`, `model.projector`, `model.layers.N`, `lm_head`) so stage hooks attach
to a real checkpoint the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F
from transformers.cache_utils import Cache
from transformers.models.clip.configuration_clip import CLIPVisionConfig
from transformers.models.clip.modeling_clip import CLIPEncoder
from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import (
    DeepseekOcr2SamVisionConfig,
    DeepseekOcr2TextConfig,
)
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionEncoder,
    DeepseekOcr2TextModel,
)

from vlmprof.models.deepseek_ocr.dims import ClipDims, DeepseekOcrDims

INIT_STD = 0.02


def has_local_views(crops: torch.Tensor | None) -> bool:
    """Whether a page's crops are encoded: with one crop or none, the global view alone
    stands for the page."""
    return crops is not None and crops.shape[0] > 1


def sam_config(dims: DeepseekOcrDims, attn_implementation: str) -> DeepseekOcr2SamVisionConfig:
    """transformers config of SAM ViT-B plus neck and the two stride-2 compressor convs."""
    sam = dims.sam
    return DeepseekOcr2SamVisionConfig(
        hidden_size=sam.width,
        num_hidden_layers=sam.depth,
        num_attention_heads=sam.heads,
        mlp_dim=sam.mlp_dim,
        window_size=sam.window,
        global_attn_indexes=list(sam.global_blocks),
        patch_size=sam.patch,
        image_size=sam.pretrain_size,
        output_channels=sam.neck_channels,
        downsample_channels=list(sam.compressor_channels),
        initializer_range=INIT_STD,
        attn_implementation=attn_implementation,
    )


def text_config(
    dims: DeepseekOcrDims, attn_implementation: str, experts_implementation: str
) -> DeepseekOcr2TextConfig:
    """transformers config of the DeepSeek-3B-MoE decoder (plain MHA, DeepSeek-V2 MoE)."""
    dec = dims.decoder
    return DeepseekOcr2TextConfig(
        vocab_size=dec.vocab,
        hidden_size=dec.hidden,
        intermediate_size=dec.dense_intermediate,
        moe_intermediate_size=dec.moe_intermediate,
        num_hidden_layers=dec.layers,
        num_attention_heads=dec.heads,
        num_key_value_heads=dec.kv_heads,
        head_dim=dec.head_dim,
        n_routed_experts=dec.routed_experts,
        n_shared_experts=dec.shared_experts,
        num_experts_per_tok=dec.experts_per_token,
        n_group=1,
        topk_group=1,
        topk_method="greedy",
        max_position_embeddings=dec.max_positions,
        mlp_layer_types=["dense"] * dec.first_k_dense
        + ["sparse"] * (dec.layers - dec.first_k_dense),
        initializer_range=INIT_STD,
        pad_token_id=None,
        attn_implementation=attn_implementation,
        experts_implementation=experts_implementation,
    )


class ClipEmbeddingsFromSam(nn.Module):
    """CLIP embeddings whose patch embeddings are SAM compressor features, plus class token."""

    def __init__(self, clip: ClipDims) -> None:
        super().__init__()
        self.pos_grid = clip.pos_grid
        self.class_embedding = nn.Parameter(torch.randn(clip.width) * INIT_STD)
        self.position_embedding = nn.Embedding(clip.pos_grid * clip.pos_grid + 1, clip.width)

    def forward(self, sam_features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) SAM features -> (B, 1 + h*w, C) tokens with positions added."""
        batch, _, height, width = sam_features.shape
        tokens = sam_features.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(tokens.dtype).expand(batch, 1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        table = self.position_embedding.weight
        grid = table[1:].reshape(1, self.pos_grid, self.pos_grid, -1).permute(0, 3, 1, 2)
        if (height, width) != (self.pos_grid, self.pos_grid):
            grid = F.interpolate(
                grid.float(),
                size=(height, width),
                mode="bicubic",
                align_corners=False,
                antialias=True,
            ).to(table.dtype)
        positions = torch.cat([table[:1], grid.flatten(2).squeeze(0).transpose(0, 1)], dim=0)
        return tokens + positions.to(tokens.dtype).unsqueeze(0)


class ClipVisionFromSam(nn.Module):
    """CLIP ViT-L (pre-LayerNorm, quick-GELU) over SAM features; keeps the class token."""

    def __init__(self, clip: ClipDims, attn_implementation: str) -> None:
        super().__init__()
        config = CLIPVisionConfig(
            hidden_size=clip.width,
            intermediate_size=clip.ffn,
            num_hidden_layers=clip.depth,
            num_attention_heads=clip.heads,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
            attn_implementation=attn_implementation,
        )
        self.embeddings = ClipEmbeddingsFromSam(clip)
        self.pre_layrnorm = nn.LayerNorm(clip.width, eps=1e-5)
        self.transformer = CLIPEncoder(config)

    def forward(self, sam_features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, 1 + h*w, width)."""
        hidden = self.pre_layrnorm(self.embeddings(sam_features))
        return self.transformer(inputs_embeds=hidden).last_hidden_state


class DeepseekOcrModel(DeepseekOcr2TextModel):
    """Decoder (`embed_tokens`, `layers`, `norm`) with the vision encoder beside it."""

    # transformers decides whether the experts implementation may be switched by looking
    # for its decorator in the model class's own source file; the experts here are its own
    # decorated deepseek_ocr2 experts, so the switch applies.
    _can_set_experts_implementation_cached_value = True

    def __init__(
        self, dims: DeepseekOcrDims, attn_implementation: str, experts_implementation: str
    ) -> None:
        super().__init__(text_config(dims, attn_implementation, experts_implementation))
        self.sam_model = DeepseekOcr2SamVisionEncoder(sam_config(dims, attn_implementation))
        self.vision_model = ClipVisionFromSam(dims.clip, attn_implementation)
        self.projector = nn.Linear(dims.projector_in, dims.projector_out)
        self.image_newline = nn.Parameter(torch.randn(dims.projector_out) * INIT_STD)
        self.view_seperator = nn.Parameter(torch.randn(dims.projector_out) * INIT_STD)

    def encode_views(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, 3, S, S) views -> (n, S/64, S/64, hidden) projected vision tokens."""
        sam_features = self.sam_model(pixels).last_hidden_state
        clip_tokens = self.vision_model(sam_features)[:, 1:]
        sam_tokens = sam_features.flatten(2).transpose(1, 2)
        features = torch.cat([clip_tokens, sam_tokens], dim=-1)
        side = sam_features.shape[-1]
        return self.projector(features).reshape(pixels.shape[0], side, side, -1)

    def image_embeddings(
        self, global_view: torch.Tensor, crops: torch.Tensor | None, tiles_w: int, tiles_h: int
    ) -> torch.Tensor:
        """Image-token embeddings of one page in the reference layout (see `batch_embeddings`)."""
        return self.batch_embeddings([(global_view, crops, tiles_w, tiles_h)])[0]

    def batch_embeddings(
        self, pages: Sequence[tuple[torch.Tensor, torch.Tensor | None, int, int]]
    ) -> list[torch.Tensor]:
        """Image-token embeddings of each page: (global view, crops, tiles_w, tiles_h).

        Every page's crops go through the encoders as one batch, then every global view as
        another, so a batch of pages costs two vision passes. A page's layout is the
        reference one: its local tiles as one (h*side) x (w*side) grid with a newline after
        each row, then its global grid with a newline after each row, then the separator.
        """
        tiled = [index for index, page in enumerate(pages) if has_local_views(page[1])]
        local: dict[int, torch.Tensor] = {}
        if tiled:
            counts = [pages[index][1].shape[0] for index in tiled]
            encoded = self.encode_views(torch.cat([pages[index][1] for index in tiled]))
            local = dict(zip(tiled, encoded.split(counts), strict=True))
        global_grids = self.encode_views(torch.cat([page[0] for page in pages]))
        embeddings = []
        for index, (_, _, tiles_w, tiles_h) in enumerate(pages):
            parts = []
            if index in local:
                tiles = local[index]
                side = tiles.shape[1]
                grid = tiles.reshape(tiles_h, tiles_w, side, side, -1).permute(0, 2, 1, 3, 4)
                parts.append(self._with_newlines(grid.reshape(tiles_h * side, tiles_w * side, -1)))
            parts.append(self._with_newlines(global_grids[index]))
            parts.append(self.view_seperator[None, :])
            embeddings.append(torch.cat(parts, dim=0))
        return embeddings

    def _with_newlines(self, grid: torch.Tensor) -> torch.Tensor:
        """(rows, cols, hidden) -> (rows * (cols + 1), hidden) with a newline per row."""
        rows = grid.shape[0]
        newline = self.image_newline.to(grid.dtype).expand(rows, 1, -1)
        return torch.cat([grid, newline], dim=1).reshape(-1, grid.shape[-1])


class DeepseekOcrForProfiling(nn.Module):
    """DeepSeek-OCR top level: `model` (vision + decoder) and an untied `lm_head`."""

    def __init__(
        self,
        dims: DeepseekOcrDims,
        attn_implementation: str = "sdpa",
        experts_implementation: str = "eager",
    ) -> None:
        super().__init__()
        self.dims = dims
        self.model = DeepseekOcrModel(dims, attn_implementation, experts_implementation)
        self.lm_head = nn.Linear(dims.decoder.hidden, dims.decoder.vocab, bias=False)

    def decoder_forward(
        self,
        inputs_embeds: torch.Tensor,
        cache: Cache,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the decoder over `inputs_embeds` (B, L, hidden); logits (B, vocab) of the last
        position. A padded batch passes its mask and positions (`models.padded_batch`)."""
        hidden = DeepseekOcr2TextModel.forward(
            self.model,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state
        return self.lm_head(hidden[:, -1, :])

    def prompt_embeddings(
        self, input_ids: torch.Tensor, image_token_id: int, image_embeds: torch.Tensor
    ) -> torch.Tensor:
        """Token embeddings with the image-token positions replaced by image embeddings."""
        embeds = self.model.embed_tokens(input_ids)
        mask = input_ids == image_token_id
        return embeds.masked_scatter(mask.unsqueeze(-1), image_embeds.to(embeds.dtype))


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

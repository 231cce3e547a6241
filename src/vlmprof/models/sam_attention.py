"""SAM's attention with its relative-position term folded into the query-key product.

The released SAM attention adds a decomposed relative-position bias to every score: per
head, bias[i, j] = q_i . Rh[row(i) - row(j)] + q_i . Rw[col(i) - col(j)]. It materialises
that bias as a (tokens x tokens) tensor per head, copies it into SDPA's mask layout and
has SDPA read it: four passes over the largest tensor of the vision encoder (a 1024 view's
global blocks: 12 heads x 4,096^2 scores). The bias is a sum of two terms that each depend
on the key only through its row or its column, so it is itself a dot product:

    q_i . k_j * scale + bias[i, j] = [q_i * scale, rel_h_i, rel_w_i] . [k_j, e_row(j), e_col(j)]

with rel_h_i = q_i . Rh[row(i) - r] over the key rows r, e_row(j) the one-hot of key j's
row (likewise for columns). Folding appends rows + columns channels to each query and key
(zero-padded to a multiple of 8) and calls SDPA with no mask and scale 1: the same scores
and no (tokens x tokens) tensor. The values are zero-padded to the same width, since the
flash kernels (CUDA's and the CPU's) take one head size for query, key and value; without
it SDPA falls back to materialising the scores. The price is attention FLOPs at the wider
head (a 1024 view's global blocks: 64 + 64 + 64 channels instead of 64).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionAttention,
)

CHANNEL_MULTIPLE = 8  # fused SDPA kernels want head dimensions in multiples of 8


def _one_hot_positions(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(height * width, height + width): each key's row and column, one-hot, row-major."""
    rows = torch.arange(height, device=like.device).repeat_interleave(width)
    cols = torch.arange(width, device=like.device).repeat(height)
    return torch.cat([F.one_hot(rows, height), F.one_hot(cols, width)], -1).to(like.dtype)


def _joined(parts: list[torch.Tensor], channels: int) -> torch.Tensor:
    """`parts` side by side along the last dimension, zero-padded to `channels`, written
    once into one buffer (a cat and then a pad would write it twice)."""
    first = parts[0]
    out = first.new_empty((*first.shape[:-1], channels))
    start = 0
    for part in parts:
        out[..., start : start + part.shape[-1]] = part
        start += part.shape[-1]
    out[..., start:] = 0
    return out


def folded_forward(
    self: DeepseekOcr2SamVisionAttention, hidden_states: torch.Tensor, output_attentions=None
) -> tuple[torch.Tensor, None]:
    """SAM attention over (batch, height, width, channels) with the relative-position term
    folded into the query-key product; no attention weights are returned."""
    batch, height, width, _ = hidden_states.shape
    heads, tokens = self.num_attention_heads, height * width
    qkv = self.qkv(hidden_states).reshape(batch, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)
    query, key, value = qkv.unbind(0)  # (batch, heads, tokens, head_dim)
    if self.use_rel_pos:
        rel_pos_h = self.get_rel_pos(height, height, self.rel_pos_h)  # (height, height, c)
        rel_pos_w = self.get_rel_pos(width, width, self.rel_pos_w)
        grid = query.reshape(batch, heads, height, width, -1)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid, rel_pos_h).reshape(batch, heads, tokens, -1)
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid, rel_pos_w).reshape(batch, heads, tokens, -1)
        positions = _one_hot_positions(height, width, key).expand(batch, heads, -1, -1)
        head_dim = value.shape[-1]
        channels = head_dim + height + width
        channels += -channels % CHANNEL_MULTIPLE
        query = _joined([query * self.scale, rel_h, rel_w], channels)
        key = _joined([key, positions], channels)
        value = _joined([value], channels)
        out = F.scaled_dot_product_attention(query, key, value, scale=1.0)[..., :head_dim]
    else:
        out = F.scaled_dot_product_attention(query, key, value, scale=self.scale)
    out = out.permute(0, 2, 1, 3).reshape(batch, height, width, -1)
    return self.proj(out), None


def sam_attentions(module: nn.Module) -> list[DeepseekOcr2SamVisionAttention]:
    """Every SAM attention in `module`."""
    return [sub for sub in module.modules() if isinstance(sub, DeepseekOcr2SamVisionAttention)]


def fold_relative_positions(module: nn.Module) -> int:
    """Give every SAM attention in `module` the folded forward; how many were changed."""
    attentions = sam_attentions(module)
    for sub in attentions:
        sub.forward = types.MethodType(folded_forward, sub)
    if not attentions:
        raise ValueError("sam_attention: folded found no SAM attention in the model")
    return len(attentions)


def _cached_rel_pos(self: DeepseekOcr2SamVisionAttention, q_size: int, k_size: int, rel_pos):
    """The released `get_rel_pos`, computed once per sizes and table (weights are fixed)."""
    key = (q_size, k_size, rel_pos.data_ptr(), rel_pos.dtype)
    table = self.rel_pos_tables.get(key)
    if table is None:
        table = type(self).get_rel_pos(self, q_size, k_size, rel_pos)
        self.rel_pos_tables[key] = table
    return table


def cache_relative_positions(module: nn.Module) -> int:
    """Make every SAM attention in `module` compute its relative-position tables once per
    size: the released `get_rel_pos` builds its index on the host each call, a copy CUDA
    graph capture refuses. Returns how many attentions were changed."""
    attentions = sam_attentions(module)
    for sub in attentions:
        sub.rel_pos_tables = {}
        sub.get_rel_pos = types.MethodType(_cached_rel_pos, sub)
    return len(attentions)

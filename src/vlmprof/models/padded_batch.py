"""Several pages' prompts as one left-padded batch: embeddings, attention mask, positions.

Pages differ in length, so a batch is padded on the left: every page's last prompt token
sits in the same column, where greedy decoding reads its logits, and each new token goes
to the same KV-cache slot for every page. Padding keys are masked out of every query, and
positions count from each page's first real token, so a page's rotary phases are those of
its lone run. A padding query attends to itself only, so no row of the mask is empty (an
empty row would give NaN, which a zero attention weight does not cancel).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def left_pad(embeds: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-page (1, L_i, hidden) embeddings -> (B, L_max, hidden), zeros on the left, and
    each page's count of padding columns (B,) on the same device."""
    longest = max(item.shape[1] for item in embeds)
    first = embeds[0]
    batch = first.new_zeros((len(embeds), longest, first.shape[-1]))
    for row, item in enumerate(embeds):
        batch[row, longest - item.shape[1] :] = item[0]
    pads = torch.tensor([longest - item.shape[1] for item in embeds], device=first.device)
    return batch, pads


def padded_attention(
    pads: torch.Tensor, query_slots: torch.Tensor, kv_length: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The additive mask (B, 1, L, kv_length) and position ids (B, L) of queries written to
    cache slots `query_slots` (L,): causal, padding keys masked, positions from each row's
    first real token. Built on the device from tensors, so a CUDA graph can replay it."""
    keys = torch.arange(kv_length, device=pads.device)[None, None, :]
    queries = query_slots[None, :, None]
    allowed = (keys <= queries) & (keys >= pads[:, None, None])
    allowed |= keys == queries
    mask = torch.zeros(allowed.shape, dtype=dtype, device=pads.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    positions = (query_slots[None, :] - pads[:, None]).clamp(min=0)
    return mask[:, None], positions

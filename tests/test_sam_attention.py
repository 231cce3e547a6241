"""SAM's relative-position term folded into the query-key product: the same attention
without the (tokens x tokens) bias, in both models, with the stage hooks still firing."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionAttention,
)

from vlmprof.flops.counted_bytes import view_bytes
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.deepseek_ocr.dims import PRESETS
from vlmprof.models.deepseek_ocr.model import build_module
from vlmprof.models.sam_attention import (
    cache_relative_positions,
    fold_relative_positions,
    folded_forward,
)
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer


@pytest.fixture(scope="module")
def sam():
    torch.manual_seed(0)
    return build_adapter(ModelSpec(preset="small", seed=5)).module.model.sam_model


@pytest.mark.parametrize("block", [0, 2])  # windowed, global
@pytest.mark.parametrize("grid", [(2, 14, 14), (1, 16, 16), (3, 5, 5)])
def test_folded_attention_equals_the_released_one(sam, block, grid):
    attention = sam.layers[block].attn
    hidden = torch.randn(*grid, attention.qkv.in_features)
    with torch.no_grad():
        released, _ = attention(hidden)
        folded, weights = folded_forward(attention, hidden)
    assert weights is None
    torch.testing.assert_close(folded, released, rtol=1e-5, atol=1e-6)


def _page() -> Image.Image:
    image = Image.new("RGB", (1240, 1754), "white")
    image.paste((20, 20, 20), (124, 175, 620, 219))
    return image


@pytest.mark.parametrize("name", ["deepseek_ocr", "deepseek_ocr2"])
def test_a_folded_model_generates_the_same_tokens_with_every_stage_timed(name):
    page, tokens, timed = _page(), [], []
    for sam_attention in ("bias", "folded"):
        spec = ModelSpec(name=name, preset="small", seed=3, sam_attention=sam_attention)
        adapter = build_adapter(spec)
        timer = StageTimer("cpu")
        instruments = Instruments(timer, NvtxRanges(enabled=False))
        handles = attach_stage_hooks(adapter.module, adapter.stage_modules(), instruments)
        tokens.append(greedy_generate(adapter, adapter.preprocess(page), 6, instruments).tolist())
        detach(handles)
        timed.append(set(timer.finish()))
    assert tokens[0] == tokens[1]
    assert {"sam", "clip", "projector"} <= timed[1] and timed[0] == timed[1]


def test_folding_removes_the_bias_traffic():
    """Counted op by op on the small preset's 1024 view: the folded SAM moves less than half
    of the released one's bytes (the bias dominates there); the copies left are the window
    and head layouts'."""
    dims = PRESETS["small"]
    released = view_bytes(build_module(dims, "meta", torch.float32), dims, 1024)["sam"]
    folded_model = build_module(dims, "meta", torch.float32)
    assert fold_relative_positions(folded_model) == dims.sam.depth
    folded = view_bytes(folded_model, dims, 1024)["sam"]
    assert folded.total.total < 0.5 * released.total.total
    assert folded.by_op["clone"].total < 0.2 * released.by_op["clone"].total


def test_a_model_without_sam_attention_is_refused():
    with pytest.raises(ValueError, match="found no SAM attention"):
        fold_relative_positions(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("folded", [False, True])
def test_relative_position_tables_are_computed_once_per_size(folded):
    # vision: cuda_graph caches them: the released get_rel_pos copies a host index to the
    # device on every call, which CUDA graph capture refuses (seen on an H100).
    module = build_module(PRESETS["small"], "cpu", torch.float32)
    if folded:
        fold_relative_positions(module)
    sam = module.model.sam_model
    pixels = torch.randn(2, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = sam(pixels).last_hidden_state
        attentions = [m for m in sam.modules() if isinstance(m, DeepseekOcr2SamVisionAttention)]
        assert cache_relative_positions(module) == len(attentions) > 0
        calls = []
        released = DeepseekOcr2SamVisionAttention.get_rel_pos

        def counted(self, *args):
            calls.append(args[:2])
            return released(self, *args)

        DeepseekOcr2SamVisionAttention.get_rel_pos = counted
        try:
            first = sam(pixels).last_hidden_state
            after_first = len(calls)
            again = sam(pixels).last_hidden_state
        finally:
            DeepseekOcr2SamVisionAttention.get_rel_pos = released
    assert torch.equal(first, want) and torch.equal(again, want)
    assert after_first == 2 * len(attentions)  # rows and columns, once each
    assert len(calls) == after_first  # the second pass computed none

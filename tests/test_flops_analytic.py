"""Analytic FLOPs and parameters: hand-computed layers, checked against FlopCounterMode on
tiny real modules (torch.nn and transformers' deepseek_ocr2 classes), and the published
parameter counts of the full preset."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionEncoder,
    DeepseekOcr2SamVisionLayer,
    DeepseekOcr2TextDecoderLayer,
    DeepseekOcr2TextModel,
    DeepseekOcr2TextRotaryEmbedding,
)

from vlmprof.flops import analytic
from vlmprof.flops.counted import count_flopcountermode
from vlmprof.models.deepseek_ocr.dims import (
    PRESETS,
    ClipDims,
    DecoderDims,
    DeepseekOcrDims,
    SamDims,
)
from vlmprof.models.deepseek_ocr.model import sam_config, text_config

FULL = PRESETS["full"]
SMALL = PRESETS["small"]
FP32 = 4


def tiny_dims(**sam_fields: object) -> DeepseekOcrDims:
    """A tiny model whose SAM is set by `sam_fields` (CLIP width follows the compressor)."""
    sam = dataclasses.replace(
        SamDims(
            width=16,
            depth=1,
            heads=2,
            mlp_dim=32,
            window=3,
            global_blocks=(),
            neck_channels=8,
            compressor_channels=(8, 16),
        ),
        **sam_fields,
    )
    return DeepseekOcrDims(
        sam=sam, clip=ClipDims(width=sam.compressor_channels[-1], depth=1, heads=2, ffn=32)
    )


def sam_block_flops(width: int, heads: int, mlp: int, grid: int, side: int, windows: int) -> int:
    """One SAM block by hand: attention parts on `windows` windows of side x side tokens."""
    head_dim = width // heads
    padded = windows * side * side
    qkv = 2 * padded * width * 3 * width
    rel_pos = 2 * (2 * windows * heads * side * side * head_dim * side)
    attention = 2 * (2 * windows * heads * (side * side) ** 2 * head_dim)
    proj = 2 * padded * width * width
    mlp_flops = 2 * (2 * grid * grid * width * mlp)
    return qkv + rel_pos + attention + proj + mlp_flops


def test_linear_projector_matches_hand_count_and_flopcountermode() -> None:
    dims = SMALL
    tokens = 37
    cost = analytic.projector_cost(dims, tokens, FP32)
    expected = 2 * tokens * dims.projector_in * dims.projector_out
    layer = nn.Linear(dims.projector_in, dims.projector_out)
    counted, _ = count_flopcountermode(layer, torch.randn(tokens, dims.projector_in))
    assert cost.flops == expected == counted
    assert cost.params == sum(p.numel() for p in layer.parameters())
    assert cost.weight_bytes == cost.params * FP32


def test_windowed_block_on_padded_grid_matches_hand_count_and_flopcountermode() -> None:
    # 128 px / patch 16 = 8x8 grid; window 3 pads it to 9x9, i.e. 9 windows of 9 tokens.
    dims = tiny_dims()
    block = (
        analytic.sam_cost(dims, 128, FP32).flops
        - analytic.sam_cost(tiny_dims(depth=0), 128, FP32).flops
    )
    expected = sam_block_flops(16, 2, 32, grid=8, side=3, windows=9)
    config = sam_config(dims, "sdpa")
    layer = DeepseekOcr2SamVisionLayer(config, window_size=3).eval()
    counted, per_op = count_flopcountermode(layer, torch.randn(1, 8, 8, 16))
    assert block == expected == counted
    assert per_op["aten._scaled_dot_product_flash_attention_for_cpu"] > 0


def test_global_block_off_pretrain_grid_matches_flopcountermode() -> None:
    # A global block built for the 64x64 pre-training grid, run on 20x20 (rel-pos resized).
    dims = tiny_dims(global_blocks=(0,))
    block = (
        analytic.sam_cost(dims, 320, FP32).flops
        - analytic.sam_cost(tiny_dims(depth=0), 320, FP32).flops
    )
    expected = sam_block_flops(16, 2, 32, grid=20, side=20, windows=1)
    layer = DeepseekOcr2SamVisionLayer(sam_config(dims, "sdpa"), window_size=0).eval()
    counted, _ = count_flopcountermode(layer, torch.randn(1, 20, 20, 16))
    assert block == expected == counted


def test_convolutions_match_hand_count_and_flopcountermode() -> None:
    # Depth 0: patch embedding, neck (1x1 and 3x3) and the two stride-2 compressor convs.
    dims = tiny_dims(depth=0)
    grid = 128 // 16
    expected = (
        2 * grid**2 * 16 * 3 * 16 * 16
        + 2 * grid**2 * 16 * 8
        + 2 * grid**2 * 8 * 8 * 9
        + 2 * (grid // 2) ** 2 * 8 * 8 * 9
        + 2 * (grid // 4) ** 2 * 8 * 16 * 9
    )
    encoder = DeepseekOcr2SamVisionEncoder(sam_config(dims, "sdpa")).eval()
    counted, _ = count_flopcountermode(encoder, torch.randn(1, 3, 128, 128))
    assert analytic.sam_cost(dims, 128, FP32).flops == expected == counted


@pytest.mark.parametrize("view", [512, 640])
def test_small_sam_encoder_matches_flopcountermode_and_params(view: int) -> None:
    encoder = DeepseekOcr2SamVisionEncoder(sam_config(SMALL, "sdpa")).eval()
    counted, _ = count_flopcountermode(encoder, torch.randn(1, 3, view, view))
    cost = analytic.sam_cost(SMALL, view, FP32)
    assert cost.flops == counted
    assert cost.params == sum(p.numel() for p in encoder.parameters())


def moe_dims() -> DeepseekOcrDims:
    """A tiny decoder: one dense and two MoE layers, top-3 of 8 experts."""
    return DeepseekOcrDims(
        sam=SamDims(width=16, depth=1, heads=2, mlp_dim=32, compressor_channels=(8, 16)),
        clip=ClipDims(width=16, depth=1, heads=2, ffn=32),
        decoder=DecoderDims(
            vocab=100,
            hidden=32,
            layers=3,
            heads=4,
            kv_heads=2,
            head_dim=8,
            dense_intermediate=48,
            moe_intermediate=16,
            routed_experts=8,
            experts_per_token=3,
            shared_experts=2,
        ),
    )


def test_moe_layer_matches_hand_count_and_flopcountermode() -> None:
    dims = moe_dims()
    dec = dims.decoder
    tokens = 11
    one_moe = dataclasses.replace(dims, decoder=dataclasses.replace(dec, layers=2))
    no_moe = dataclasses.replace(dims, decoder=dataclasses.replace(dec, layers=1))
    layer_flops = (
        analytic.llm_prefill_cost(one_moe, tokens, FP32).flops
        - analytic.llm_prefill_cost(no_moe, tokens, FP32).flops
    )
    h, inter = dec.hidden, dec.moe_intermediate
    projections = 2 * tokens * h * (dec.heads + 2 * dec.kv_heads + dec.heads) * dec.head_dim
    # Causal: each query meets the keys up to itself.
    attention = 2 * 2 * dec.heads * (tokens * (tokens + 1) // 2) * dec.head_dim
    router = 2 * tokens * h * dec.routed_experts
    routed = dec.experts_per_token * 2 * tokens * 3 * h * inter
    shared = 2 * tokens * 3 * h * inter * dec.shared_experts
    assert layer_flops == projections + attention + router + routed + shared

    config = text_config(dims, "sdpa", "eager")
    layer = DeepseekOcr2TextDecoderLayer(config, layer_idx=1).eval()
    rotary = DeepseekOcr2TextRotaryEmbedding(config)
    hidden = torch.randn(1, tokens, h)
    position = rotary(hidden, torch.arange(tokens)[None])
    counted, _ = count_flopcountermode(
        lambda x: layer(x, position_embeddings=position, attention_mask=None), hidden
    )
    assert counted == layer_flops


def test_decoder_prefill_matches_transformers_text_model_and_params() -> None:
    dims = moe_dims()
    dec = dims.decoder
    config = text_config(dims, "sdpa", "eager")
    decoder = DeepseekOcr2TextModel(config).eval()
    lm_head = nn.Linear(dec.hidden, dec.vocab, bias=False)

    def prefill(ids: torch.Tensor) -> torch.Tensor:
        return lm_head(decoder(input_ids=ids).last_hidden_state[:, -1])

    counted, _ = count_flopcountermode(prefill, torch.randint(0, dec.vocab, (1, 23)))
    assert analytic.llm_prefill_cost(dims, 23, FP32).flops == counted
    n_params = sum(p.numel() for p in decoder.parameters()) + lm_head.weight.numel()
    assert analytic.decoder_params(dims) == n_params


def test_full_preset_parameter_counts() -> None:
    counts = analytic.param_counts(FULL)
    print("full preset parameter counts:", counts)
    assert counts["decoder_total"] == 2_934_734_080
    assert counts["total"] == pytest.approx(3.3e9, rel=0.05)
    assert counts["decoder_active_per_token"] == pytest.approx(570e6, rel=0.10)
    assert counts["sam"] == pytest.approx(95.57e6, rel=0.001)
    with torch.device("meta"):
        sam = DeepseekOcr2SamVisionEncoder(sam_config(FULL, "sdpa"))
    assert counts["sam"] == sum(p.numel() for p in sam.parameters())


def test_full_preset_view_tokens_and_padding() -> None:
    # 1024 view: 64x64 grid padded to 70x70 in windowed blocks; 16x16 tokens after compression.
    sam = analytic.sam_cost(FULL, 1024, 2)
    padded = sam_block_flops(768, 12, 3072, grid=64, side=14, windows=25)
    global_block = sam_block_flops(768, 12, 3072, grid=64, side=64, windows=1)
    convs = (
        2 * 64**2 * 768 * 3 * 256
        + 2 * 64**2 * 768 * 256
        + 2 * 64**2 * 256 * 256 * 9
        + 2 * 32**2 * 256 * 512 * 9
        + 2 * 16**2 * 512 * 1024 * 9
    )
    assert sam.flops == 8 * padded + 4 * global_block + convs
    clip = analytic.clip_cost(FULL, 1024, 2)
    tokens = 257
    per_layer = 4 * 2 * tokens * 1024**2 + 4 * tokens**2 * 1024 + 2 * 2 * tokens * 1024 * 4096
    assert clip.flops == 24 * per_layer
    assert analytic.projector_cost(FULL, 256, 2).flops == 2 * 256 * 2048 * 1280


def test_vision_cost_sums_views_and_reads_weights_once_per_view_size() -> None:
    parts = analytic.vision_cost(FULL, "gundam", 6, 2)
    global_view = analytic.view_cost(FULL, 1024, 2)
    crop = analytic.view_cost(FULL, 640, 2)
    for name in ("sam", "clip", "projector"):
        assert parts[name].flops == global_view[name].flops + 6 * crop[name].flops
        assert parts[name].weight_bytes == 2 * global_view[name].weight_bytes
        assert parts[name].params == global_view[name].params
    assert parts["vision"].flops == sum(parts[n].flops for n in ("sam", "clip", "projector"))
    base = analytic.vision_cost(FULL, "base", 0, 2)
    assert base["vision"].flops == sum(c.flops for c in global_view.values())
    with pytest.raises(ValueError, match="n_crops"):
        analytic.vision_cost(FULL, "base", 4, 2)


def test_decode_step_weights_kv_and_flops() -> None:
    dec = FULL.decoder
    context = 1000
    step = analytic.decode_step_cost(FULL, context, 2)
    active = analytic.param_counts(FULL)["decoder_active_per_token"]
    assert step.weight_bytes == active * 2
    entry = 2 * dec.layers * dec.kv_heads * dec.head_dim * 2
    assert step.kv_bytes == (context + 1) * entry
    attention = dec.layers * 2 * 2 * dec.heads * context * dec.head_dim
    assert step.attention_flops == attention
    # Every matmul outside attention reads each active weight once for one token: 2 FLOPs each,
    # except the embedding row (a lookup) and the norms (no matmul).
    norms = (2 * dec.layers + 1) * dec.hidden
    assert step.flops - attention == 2 * (active - dec.hidden - norms)


def test_prefill_attention_is_causal_and_prefill_reads_every_expert() -> None:
    dec = FULL.decoder
    prefill = analytic.llm_prefill_cost(FULL, 900, 2)
    # Each of the 900 queries meets the keys up to itself: 900 x 901 / 2 pairs, not 900^2.
    pairs = 900 * 901 // 2
    assert prefill.attention_flops == dec.layers * 2 * 2 * dec.heads * pairs * dec.head_dim
    assert analytic.causal_pairs(900, 900) == pairs
    assert analytic.causal_pairs(1, 1000) == 1000  # a decode token sees every cached key
    assert analytic.causal_pairs(3, 10) == 8 + 9 + 10
    with pytest.raises(ValueError, match="q_len"):
        analytic.causal_pairs(10, 5)
    # 900 tokens touch all 64 experts; one token touches exactly its top-6.
    assert analytic.expected_distinct_experts(64, 6, 900) == pytest.approx(64, abs=1e-6)
    assert analytic.expected_distinct_experts(64, 6, 1) == pytest.approx(6)
    every_expert = analytic.decoder_active_params(FULL, 64) + 899 * dec.hidden
    assert prefill.weight_bytes == pytest.approx(every_expert * 2)


def test_the_k_and_v_projections_write_the_cache_and_are_counted_once() -> None:
    """One dense layer by hand: the K and V projections' outputs are the cache written
    (kv_bytes, then read back by attention), not also activations, which would count each
    position's cache write twice."""
    dec = dataclasses.replace(SMALL.decoder, layers=1, first_k_dense=1)
    dims = dataclasses.replace(SMALL, decoder=dec)
    length, h = 10, dec.hidden
    q_width, kv_width = dec.heads * dec.head_dim, dec.kv_heads * dec.head_dim
    per_token = (
        (h + q_width)  # q projection: input read, output written
        + 2 * h  # k and v projections: input read, output into the cache
        + 2 * q_width  # attention: q read, output written (K and V are the cache's)
        + (q_width + h)  # output projection
        + (h + 2 * dec.dense_intermediate) + (dec.dense_intermediate + h)  # gated MLP
    )
    prefill = analytic.llm_prefill_cost(dims, length, FP32)
    assert prefill.activation_bytes == (length * per_token + h + dec.vocab) * FP32
    assert prefill.kv_bytes == 2 * length * 2 * kv_width * FP32  # written once, read once


def test_necessary_bytes_are_weights_cache_and_matmul_inputs_and_outputs() -> None:
    dec = FULL.decoder
    entry = 2 * dec.layers * dec.kv_heads * dec.head_dim * 2
    prefill = analytic.llm_prefill_cost(FULL, 100, 2)
    assert prefill.kv_bytes == 2 * 100 * entry  # written once, read back once
    step = analytic.decode_step_cost(FULL, 500, 2)
    assert step.kv_bytes == 501 * entry  # 500 positions read, the new one written
    for cost in (prefill, step, analytic.sam_cost(FULL, 1024, 2)):
        assert cost.necessary_bytes == cost.weight_bytes + cost.kv_bytes + cost.activation_bytes


def test_decode_total_counts_tokens_minus_one_steps() -> None:
    assert analytic.decode_total_cost(FULL, 500, 1, 2).flops == 0
    total = analytic.decode_total_cost(FULL, 500, 4, 2)
    steps = [analytic.decode_step_cost(FULL, 500 + j, 2) for j in (1, 2, 3)]
    assert total.flops == sum(s.flops for s in steps)
    assert total.kv_bytes == sum(s.kv_bytes for s in steps)
    assert total.weight_bytes == 3 * steps[0].weight_bytes
    assert total.params == analytic.decoder_params(FULL)


def test_stage_cost_arithmetic() -> None:
    a = analytic.StageCost(10.0, 3, 6.0, 8.0, kv_bytes=1.0, attention_flops=2.0)
    b = analytic.StageCost(1.0, 1, 2.0, 3.0)
    assert a + b == analytic.StageCost(11.0, 4, 8.0, 11.0, 1.0, 2.0)
    assert a.scaled(2) == analytic.StageCost(20.0, 3, 12.0, 16.0, 2.0, 4.0)
    assert a.batched(3) == analytic.StageCost(30.0, 3, 6.0, 24.0, 3.0, 6.0)


def test_bad_inputs_name_what_to_fix() -> None:
    with pytest.raises(ValueError, match="dtype"):
        analytic.bytes_per_element("int8")
    with pytest.raises(ValueError, match="multiple of 64"):
        analytic.sam_cost(FULL, 1000, 2)
    with pytest.raises(ValueError, match="mode"):
        analytic.vision_cost(FULL, "huge", 0, 2)

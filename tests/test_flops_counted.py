"""Counted FLOPs on the real model agree with the analytic formulas."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from vlmprof.flops import analytic
from vlmprof.flops.counted import (
    COUNTER_FORMULAS,
    SDPA_KERNELS,
    DecoderLayerProbe,
    count_flopcountermode,
    count_fvcore,
    decoder_counts,
    sdpa_pairs,
    stage_counts,
    view_counts,
)
from vlmprof.models.base import ModelSpec
from vlmprof.models.deepseek_ocr.adapter import DeepseekOcrAdapter
from vlmprof.models.deepseek_ocr.dims import PRESETS
from vlmprof.models.deepseek_ocr.model import build_module

SMALL = PRESETS["small"]
FULL = PRESETS["full"]
SDPA = "aten::scaled_dot_product_attention"


class Attention(nn.Module):
    """Bare SDPA over given q, k, v."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_flopcountermode_counts_linear_and_sdpa_as_its_kernel_computes_it() -> None:
    total, per_op = count_flopcountermode(nn.Linear(5, 7), torch.randn(3, 5))
    assert total == 2 * 3 * 5 * 7 and per_op == {"aten.addmm": total}
    q, k, v = (torch.randn(2, 3, 11, 8) for _ in range(3))
    # The fused CPU kernel skips the masked pairs: each query meets the keys up to itself.
    cpu, _ = count_flopcountermode(Attention(), q, k, v)
    assert cpu == 2 * 2 * 2 * 3 * (11 * 12 // 2) * 8
    # torch's own formula for the CUDA kernel, called causal, counts the square it skips.
    stock = FlopCounterMode(display=False).flop_registry
    efficient = torch.ops.aten._scaled_dot_product_efficient_attention
    assert stock[efficient](q, k, v, None, False, 0.0, True, out_val=None) == (
        2 * 2 * 2 * 3 * 11 * 11 * 8
    )
    # The math path on the meta device computes every score, then masks: the square.
    meta, _ = count_flopcountermode(Attention(), *(x.to("meta") for x in (q, k, v)))
    assert meta == 2 * 2 * 2 * 3 * 11 * 11 * 8
    full, _ = count_flopcountermode(F.scaled_dot_product_attention, q, k, v)
    assert full == meta


def test_causal_pairs_follow_the_kernels_top_left_mask() -> None:
    assert sdpa_pairs(4, 4, True) == 10 and sdpa_pairs(4, 4, False) == 16
    assert sdpa_pairs(2, 5, True) == 1 + 2  # query i meets keys 0..i
    assert sdpa_pairs(5, 2, True) == 1 + 2 + 2 + 2 + 2


def test_fvcore_doubles_macs_and_names_what_it_cannot_see() -> None:
    total, per_op, unsupported = count_fvcore(nn.Linear(5, 7), (torch.randn(3, 5),))
    assert total == 2 * 3 * 5 * 7 and per_op == {"linear": total} and unsupported == {}
    q, k, v = (torch.randn(2, 3, 11, 8) for _ in range(3))
    total, _, unsupported = count_fvcore(Attention(), (q, k, v))
    assert total == 0 and unsupported == {SDPA: 1}


def assert_agrees(counts: dict, cost: analytic.StageCost) -> None:
    """FlopCounterMode within 1%; fvcore within 2% once SDPA's analytic FLOPs are added."""
    assert counts["flopcountermode"] == pytest.approx(cost.flops, rel=0.01)
    missing = cost.attention_flops if SDPA in counts["fvcore_unsupported_ops"] else 0.0
    assert counts["fvcore"] + missing == pytest.approx(cost.flops, rel=0.02)


def test_small_preset_real_model_agrees_with_analytic() -> None:
    adapter = DeepseekOcrAdapter.build(ModelSpec(preset="small", device="cpu", dtype="float32"))
    counts = stage_counts(adapter, SMALL, 640, prefill_len=150, context_len=180)
    expected = analytic.view_cost(SMALL, 640, 4) | {
        "llm_prefill": analytic.llm_prefill_cost(SMALL, 150, 4),
        "decode_step": analytic.decode_step_cost(SMALL, 180, 4),
    }
    for stage, cost in expected.items():
        assert_agrees(counts[stage], cost)
        assert counts[stage]["flopcountermode_device"] == "cpu"
    assert counts["sam"]["fvcore_unsupported_ops"][SDPA] == SMALL.sam.depth


def test_moe_flops_do_not_depend_on_routing() -> None:
    model = build_module(SMALL, "cpu", torch.float32)
    inner = model.model
    moe = inner.layers[SMALL.decoder.first_k_dense]
    routes: list[torch.Tensor] = []
    moe.mlp.gate.register_forward_hook(lambda _m, _i, out: routes.append(out[2]))
    probe = DecoderLayerProbe(moe, inner.rotary_emb)
    empty = torch.zeros(1, SMALL.decoder.kv_heads, 0, SMALL.decoder.head_dim)
    flops = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        hidden = torch.randn(1, 40, SMALL.decoder.hidden)
        flops.append(count_flopcountermode(probe, hidden, empty, empty)[0])
    experts = SMALL.decoder.routed_experts
    loads = [torch.bincount(r.flatten(), minlength=experts) for r in routes]
    assert not torch.equal(loads[0], loads[1])  # the experts' shares of tokens differ
    assert flops[0] == flops[1]


def test_full_preset_vision_on_meta_agrees_with_analytic() -> None:
    model = build_module(FULL, "meta", torch.float32)
    inner = model.model
    pixels = torch.empty(1, 3, 1024, 1024, device="meta")
    sam, _ = count_flopcountermode(lambda x: inner.sam_model(x).last_hidden_state, pixels)
    features = torch.empty(1, 1024, 16, 16, device="meta")
    clip, _ = count_flopcountermode(inner.vision_model, features)
    costs = analytic.view_cost(FULL, 1024, 2)
    assert sam == pytest.approx(costs["sam"].flops, rel=0.01)
    assert clip == pytest.approx(costs["clip"].flops, rel=0.01)


def test_full_preset_decoder_pieces_agree_with_analytic() -> None:
    model = build_module(FULL, "meta", torch.float32)
    prefill = decoder_counts(model, FULL, 48, 48)
    step = decoder_counts(model, FULL, 1, 64)
    assert_agrees(prefill, analytic.llm_prefill_cost(FULL, 48, 2))
    assert_agrees(step, analytic.decode_step_cost(FULL, 64, 2))
    assert "scaled" in prefill["note"]


def test_view_counts_of_meta_model_count_on_meta_and_trace_on_cpu() -> None:
    model = build_module(SMALL, "meta", torch.float32)
    counts = view_counts(model, SMALL, 512)
    for stage, cost in analytic.view_cost(SMALL, 512, 4).items():
        assert counts[stage]["flopcountermode_device"] == "meta"
        assert_agrees(counts[stage], cost)


def test_decoder_counts_reject_a_query_longer_than_its_context() -> None:
    with pytest.raises(ValueError, match="q_len"):
        decoder_counts(build_module(SMALL, "meta", torch.float32), SMALL, 10, 5)


def test_every_sdpa_kernel_counts_grouped_query_attention_by_its_query_heads() -> None:
    # 16 query heads served by 2 key/value heads (Qwen2.5-VL-3B's decoder): torch's own
    # formula for the CUDA kernels refuses these shapes.
    counter = FlopCounterMode(display=False, custom_mapping=COUNTER_FORMULAS)
    query = torch.empty(1, 16, 10, 64, device="meta")
    key = torch.empty(1, 2, 12, 64, device="meta")
    for kernel in SDPA_KERNELS:
        assert counter.flop_registry[kernel](query, key, key, out_val=None) == (
            2 * 16 * 10 * 12 * (64 + 64)
        ), kernel
        # Called with is_causal (positionally, as the dispatcher passes it), each kernel
        # counts the pairs under the mask.
        names = [a.name for a in kernel.default._schema.arguments]
        args = [query, key, key] + [None] * (names.index("is_causal") - 3) + [True]
        assert counter.flop_registry[kernel](*args, out_val=None) == (
            2 * 16 * sdpa_pairs(10, 12, True) * (64 + 64)
        ), kernel

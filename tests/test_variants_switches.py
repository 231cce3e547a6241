"""Variant switches: mapping onto an arm's fields, sweep points, refusals before any job."""

from __future__ import annotations

import pytest

from vlmprof.variants.switches import (
    VariantError,
    apply_switches,
    changes_workload,
    check_variant,
)

BASE = {
    "name": "deepseek_ocr",
    "preset": "small",
    "overrides": {},
    "device": "cpu",
    "dtype": "auto",
    "attn_implementation": "sdpa",
    "experts_implementation": "eager",
    "mode": "gundam",
    "max_crops": 6,
    "seed": 0,
    "checkpoint": None,
    "trust_remote_code": False,
    "decode": "eager",
    "compile": "none",
    "sam_attention": "bias",
    "perturb": 0.0,
}


def test_switches_map_onto_the_fields_they_name():
    spec = apply_switches(BASE, {"experts": "batched", "attention": "eager", "decode": "static"})
    assert spec["experts_implementation"] == "batched_mm"
    assert spec["attn_implementation"] == "eager"
    assert spec["decode"] == "static"
    assert {
        k: v
        for k, v in spec.items()
        if k not in {"experts_implementation", "attn_implementation", "decode"}
    } == {
        k: v
        for k, v in BASE.items()
        if k not in {"experts_implementation", "attn_implementation", "decode"}
    }
    assert apply_switches(BASE, {"experts": "loop"})["experts_implementation"] == "eager"


@pytest.mark.parametrize(
    ("switches", "sweep"),
    [
        ({"experts": "grouped"}, False),
        ({"dtype": "bfloat16", "compile": "vision"}, False),
        ({"sam_attention": "folded"}, False),
        ({"mode": "base"}, True),
        ({"max_crops": 4}, True),
        ({"preset": "full"}, True),
        ({"mode": "gundam"}, False),  # the baseline's own mode: the same workload
    ],
)
def test_only_workload_switches_make_a_sweep_point(switches, sweep):
    assert changes_workload(BASE, switches) is sweep


@pytest.mark.parametrize(
    ("name", "base", "switches", "key"),
    [
        (
            "graphed",
            BASE,
            {"experts": "grouped", "decode": "cuda_graph"},
            "variants.graphed.decode",
        ),
        ("loopgraph", BASE | {"device": "cuda"}, {"decode": "cuda_graph"}, "expert loop"),
        (
            "graphed32",
            BASE | {"device": "cuda", "dtype": "float32"},
            {"experts": "grouped", "decode": "cuda_graph"},
            "cannot capture grouped experts in float32",
        ),
        ("baseline", BASE, {"experts": "grouped"}, "variants.baseline"),
        ("bigger", BASE | {"checkpoint": "ckpt"}, {"preset": "full"}, "variants.bigger.preset"),
        (
            "fast",
            BASE | {"checkpoint": "ckpt", "trust_remote_code": True},
            {"decode": "static"},
            "trust_remote_code",
        ),
        (
            "folded",
            BASE | {"checkpoint": "ckpt", "trust_remote_code": True},
            {"sam_attention": "folded"},
            "trust_remote_code",
        ),
        ("folded", BASE | {"name": "causal_lm"}, {"sam_attention": "folded"}, "has no SAM"),
        (
            "folded",
            BASE,
            {"sam_attention": "folded", "attention": "eager"},
            "variants.folded.sam_attention: folded runs SAM's attention through SDPA",
        ),
        ("visiongraph", BASE, {"vision": "cuda_graph"}, "variants.visiongraph.vision: cuda_graph"),
        (
            "visiongraph",
            BASE | {"name": "causal_lm", "device": "cuda"},
            {"vision": "cuda_graph"},
            "no vision stages",
        ),
        (
            "visiongraph",
            BASE | {"device": "cuda", "checkpoint": "ckpt", "trust_remote_code": True},
            {"vision": "cuda_graph"},
            "variants.visiongraph: vision need our module tree",
        ),
        ("gpupre", BASE, {"preprocess": "gpu"}, "variants.gpupre.preprocess: gpu needs a CUDA"),
        (
            "gpupre",
            BASE | {"name": "deepseek_ocr2", "device": "cuda"},
            {"preprocess": "gpu"},
            "built for deepseek_ocr's views",
        ),
        (
            "grouped",
            BASE | {"name": "hf_vlm"},
            {"experts": "grouped"},
            "^variants.grouped.experts: grouped picks how the MoE experts run and model hf_vlm"
            " has none",
        ),
        (
            "fused",
            BASE | {"name": "hf_vlm", "device": "cuda"},
            {"routing": "fused"},
            "^variants.fused.routing: fused compiles the MoE routers and model hf_vlm has none",
        ),
    ],
)
def test_impossible_variants_are_refused_with_the_key(name, base, switches, key):
    with pytest.raises(VariantError, match=key):
        check_variant(name, base, switches)


def test_vision_graphs_on_cuda_are_allowed_even_for_a_base_that_predates_the_field():
    older = {k: v for k, v in BASE.items() if k != "sam_attention"}
    check_variant("visiongraph", older | {"device": "cuda:0"}, {"vision": "cuda_graph"})
    assert apply_switches(BASE, {"vision": "cuda_graph"})["vision"] == "cuda_graph"


def test_gpu_preprocessing_on_cuda_is_allowed_also_with_remote_code():
    remote = BASE | {"device": "cuda", "checkpoint": "ckpt", "trust_remote_code": True}
    check_variant("gpupre", remote, {"preprocess": "gpu"})


def test_cuda_graph_with_grouped_experts_on_cuda_is_allowed():
    check_variant(
        "graphed", BASE | {"device": "cuda:0"}, {"experts": "grouped", "decode": "cuda_graph"}
    )
    fp32 = BASE | {"device": "cuda:0", "dtype": "float32"}
    check_variant("graphed", fp32, {"experts": "batched", "decode": "cuda_graph"})
    check_variant(
        "graphed", fp32, {"experts": "grouped", "decode": "cuda_graph", "dtype": "bfloat16"}
    )


def test_cuda_graph_decode_of_a_model_without_experts_needs_no_experts_switch():
    check_variant("graphed", BASE | {"name": "hf_vlm", "device": "cuda"}, {"decode": "cuda_graph"})

"""Work of each stage of one page counted over the adapter's own run: FLOPs equal to the
analytic formulas where both exist (DeepSeek-OCR on every expert path, DeepSeek-OCR-2), and
counted for models that have no formulas (transformers VLMs by architecture), bytes too;
their decoders' counts equal a dense decoder's formula written out from the config. A
static-cache adapter counts the released path's work."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image
from torch.utils._python_dispatch import _disable_current_modes

from vlmprof.flops.analytic import (
    bytes_per_element,
    causal_pairs,
    decode_step_cost,
    decode_total_cost,
    llm_prefill_cost,
    vision_cost,
)
from vlmprof.flops.page_work import page_work
from vlmprof.flops.work import decode_work
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.hf_vlm.architectures import ARCHITECTURES
from vlmprof.models.implementation import wrap_forwards

A4 = Image.new("RGB", (1240, 1754), "white")
WIDE = Image.new("RGB", (1754, 400), "white")
PAGES = (("a4", A4), ("wide", WIDE))
FLOAT32_BYTES = 4


@pytest.mark.parametrize(
    ("model", "experts"),
    [
        ("deepseek_ocr", "eager"),
        ("deepseek_ocr", "grouped_mm"),
        ("deepseek_ocr", "batched_mm"),
        ("deepseek_ocr2", "grouped_mm"),
    ],
)
def test_counted_stages_equal_the_analytic_formulas(model: str, experts: str):
    spec = ModelSpec(name=model, preset="small", experts_implementation=experts)
    adapter = build_adapter(spec)
    inputs = adapter.preprocess(A4)
    assert inputs.n_crops > 1  # the crops' SAM, CLIP and projector passes are counted too
    work = page_work(adapter, inputs)
    counted = {stage: values["flops"] for stage, values in work.items()}
    dims = adapter.dims
    analytic = {
        stage: cost.flops
        for stage, cost in vision_cost(dims, inputs.mode, inputs.n_crops, FLOAT32_BYTES).items()
    }
    analytic["llm_prefill"] = llm_prefill_cost(dims, inputs.prefill_len, FLOAT32_BYTES).flops
    # The decode step after the prefill attends over the prompt and its own token.
    step = decode_step_cost(dims, inputs.prefill_len + 1, FLOAT32_BYTES)
    analytic["decode_step"] = step.flops
    for stage, flops in analytic.items():
        assert counted[stage] == pytest.approx(flops, rel=1e-9), stage
    assert counted["prefill"] == pytest.approx(counted["vision"] + counted["llm_prefill"])
    # Two counted steps give every later one: a generation's decode FLOPs are the formula's.
    tokens = 9
    total = decode_total_cost(dims, inputs.prefill_len, tokens, FLOAT32_BYTES)
    assert decode_work(work, inputs.prefill_len, tokens)["flops"] == pytest.approx(
        total.flops, rel=1e-9
    )
    # Each cached position adds its K and V rows to what the next step's attention reads.
    growth = work["decode_step_next"]["bytes"] - work["decode_step"]["bytes"]
    next_step = decode_step_cost(dims, inputs.prefill_len + 2, FLOAT32_BYTES)
    assert growth == pytest.approx(next_step.kv_bytes - step.kv_bytes, rel=1e-9)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_a_model_without_formulas_is_counted_stage_by_stage(architecture: str):
    adapter = build_adapter(ModelSpec(name="hf_vlm", architecture=architecture))
    works = {name: page_work(adapter, adapter.preprocess(page)) for name, page in PAGES}
    pages = {
        name: {stage: values["flops"] for stage, values in work.items()}
        for name, work in works.items()
    }
    for work in works.values():
        # The next decode step reads one more cached position.
        assert work["decode_step_next"]["bytes"] > work["decode_step"]["bytes"]
    for counted in pages.values():
        assert counted["clip"] > 0 and counted["projector"] > 0 and "sam" not in counted
        assert counted["vision"] == pytest.approx(counted["clip"] + counted["projector"])
        assert counted["llm_prefill"] > 0 and counted["decode_step"] > 0
        assert counted["prefill"] == pytest.approx(counted["vision"] + counted["llm_prefill"])
    # Another page shape gives other image tokens, so other vision and prefill FLOPs.
    assert pages["a4"]["vision"] != pages["wide"]["vision"]
    assert pages["a4"]["llm_prefill"] != pages["wide"]["llm_prefill"]


def dense_decoder_flops(text: object, q_len: int, context: int) -> int:
    """A dense decoder's FLOPs over the last `q_len` of `context` positions, written out
    from its config: q, k, v and o projections (grouped-query k and v), a gated MLP, the
    causal attention core (each query against the keys up to itself, as the kernels compute
    it), and the lm_head on the last position."""
    width, heads = text.hidden_size, text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or width // heads
    kv_width = text.num_key_value_heads * head_dim
    projections = 2 * q_len * width * (2 * heads * head_dim + 2 * kv_width)
    mlp = 3 * 2 * q_len * width * text.intermediate_size
    attention = 2 * heads * causal_pairs(q_len, context) * 2 * head_dim
    layers = text.num_hidden_layers * (projections + mlp + attention)
    return layers + 2 * width * text.vocab_size


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_a_transformers_vlms_decoder_counts_as_its_formula(architecture: str):
    adapter = build_adapter(ModelSpec(name="hf_vlm", architecture=architecture))
    inputs = adapter.preprocess(A4)
    work = page_work(adapter, inputs)
    text, prompt = adapter.config.text_config, inputs.prefill_len
    assert work["llm_prefill"]["flops"] == dense_decoder_flops(text, prompt, prompt)
    assert work["decode_step"]["flops"] == dense_decoder_flops(text, 1, prompt + 1)
    assert work["decode_step_next"]["flops"] == dense_decoder_flops(text, 1, prompt + 2)


@pytest.mark.parametrize(
    "spec",
    [
        *(ModelSpec(name="hf_vlm", architecture=name) for name in sorted(ARCHITECTURES)),
        ModelSpec(name="deepseek_ocr", preset="small"),
    ],
    ids=lambda spec: spec.architecture if spec.name == "hf_vlm" else spec.name,
)
def test_a_static_decode_adapter_counts_the_released_paths_work(spec: ModelSpec):
    eager = build_adapter(spec)
    static = build_adapter(replace(spec, decode="static"))
    inputs = eager.preprocess(A4)
    # Not attention over the whole static cache: the released path's growing one.
    assert page_work(static, inputs) == page_work(eager, inputs)
    assert static.static is not None  # the static path back after counting


def test_every_op_is_counted_as_implemented_beside_the_matmul_class_bytes():
    adapter = build_adapter(ModelSpec(name="deepseek_ocr", preset="small"))
    inputs = adapter.preprocess(A4)
    work = page_work(adapter, inputs)
    for stage, values in work.items():
        assert values["bytes_as_implemented"] >= values["bytes"] > 0, stage
        assert 0 < values["weight_bytes_as_implemented"] < values["bytes_as_implemented"], stage
    # SAM moves its relative-position bias and its layout copies besides its matmuls.
    assert work["sam"]["bytes_as_implemented"] > 2 * work["sam"]["bytes"]
    # The two decode steps give every later one, for both byte figures.
    steps = decode_work(work, inputs.prefill_len, 9)
    assert steps["bytes_as_implemented"] > steps["bytes"]
    # The eager step reads less than the necessary bytes only if something is missing.
    step = decode_step_cost(adapter.dims, inputs.prefill_len + 1, bytes_per_element("float32"))
    assert work["decode_step"]["bytes_as_implemented"] > step.weight_bytes


def replayed(forward):  # noqa: ANN001, ANN201
    """A forward whose ops no dispatch mode sees, as a CUDA graph's replay or compiled
    kernels hide them."""

    def hidden(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        with _disable_current_modes():
            return forward(*args, **kwargs)

    return hidden


def test_wrapped_forwards_are_counted_as_their_eager_code():
    spec = ModelSpec(name="deepseek_ocr", preset="small")
    eager = build_adapter(spec)
    wrapped = build_adapter(spec)
    wrap_forwards(wrapped.module, ["model.sam_model", "model.vision_model"], replayed, "vision")
    compiled = build_adapter(replace(spec, compile="all"))
    inputs = eager.preprocess(A4)
    expected = page_work(eager, inputs)
    assert page_work(wrapped, inputs) == expected
    assert wrapped.module.model.sam_model.forward.__name__ == "hidden"  # back after counting
    # torch.compile'd parts are counted as the code they compile, without compiling it.
    assert page_work(compiled, inputs) == expected

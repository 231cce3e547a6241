"""Static-cache decoding and implementation switches keep the released path's outputs."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from tests.workflow_helpers import default_settings
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.implementation import compile_parts, perturb_weight
from vlmprof.models.static_decode import bucket_length
from vlmprof.runtime.generate import TOP_K, GenerationCapture, generate_batch, greedy_generate
from vlmprof.runtime.instruments import Instruments
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.untimed_runs import reference_outputs

TOKENS = 10


def _generate(spec: ModelSpec, page: Image.Image) -> dict[str, torch.Tensor]:
    adapter = build_adapter(spec)
    inputs = adapter.preprocess(page).to(adapter.device, adapter.dtype)
    capture = GenerationCapture()
    tokens = greedy_generate(
        adapter, inputs, TOKENS, Instruments(None, NvtxRanges(enabled=False)), capture=capture
    )
    return capture.to_dict(tokens)


@pytest.fixture(scope="module")
def page() -> Image.Image:
    return Image.new("RGB", (700, 1000), "white")


@pytest.fixture(scope="module")
def baseline(page) -> dict[str, torch.Tensor]:
    return _generate(ModelSpec(preset="small", mode="base"), page)


def test_bucket_length_rounds_up_to_whole_buckets():
    assert bucket_length(1) == 256
    assert bucket_length(256) == 256
    assert bucket_length(257) == 512


def test_capture_keeps_tokens_first_logits_and_top_k(baseline):
    assert baseline["tokens"].shape == (TOKENS,)
    assert baseline["top_indices"].shape == (TOKENS, TOP_K)
    assert torch.equal(baseline["top_indices"][:, 0], baseline["tokens"])
    assert baseline["first_logits"].argmax() == baseline["tokens"][0]


@pytest.mark.parametrize(
    "switches",
    [
        {"decode": "static"},
        {"experts_implementation": "grouped_mm"},
        {"experts_implementation": "batched_mm", "decode": "static"},
    ],
    ids=["static-cache", "grouped-experts", "batched-static"],
)
def test_fp32_implementations_reproduce_the_released_path(page, baseline, switches):
    other = _generate(ModelSpec(preset="small", mode="base", **switches), page)
    assert torch.equal(other["tokens"], baseline["tokens"])
    assert torch.allclose(other["first_logits"], baseline["first_logits"], atol=1e-4)


def test_static_cache_is_reused_across_pages_of_one_bucket(page):
    adapter = build_adapter(ModelSpec(preset="small", mode="base", decode="static"))
    inputs = adapter.preprocess(page).to(adapter.device, adapter.dtype)
    instruments = Instruments(None, NvtxRanges(enabled=False))
    first = greedy_generate(adapter, inputs, TOKENS, instruments)
    second = greedy_generate(adapter, inputs, TOKENS, instruments)
    assert torch.equal(first, second)
    assert len(adapter.static.slots) == 1


def test_a_static_cache_sizes_itself_from_what_the_generation_passes_it(page):
    adapter = build_adapter(ModelSpec(preset="small", mode="base", decode="static"))
    inputs = adapter.preprocess(page)
    instruments = Instruments(None, NvtxRanges(enabled=False))
    short = bucket_length(inputs.prefill_len + 3)
    long = bucket_length(inputs.prefill_len + 300)
    assert short < long
    greedy_generate(adapter, inputs, 3, instruments)
    assert adapter.static.current is adapter.static.slots[(short, 1)]
    adapter.prefill(inputs, 300)
    assert adapter.static.current is adapter.static.slots[(long, 1)]
    # A batch's cache holds its longest page.
    generate_batch(adapter, [inputs, inputs], [3, 2], instruments)
    assert sorted(adapter.static.slots) == [(short, 1), (short, 2), (long, 1)]


def test_perturbation_changes_the_model(page, baseline):
    other = _generate(ModelSpec(preset="small", mode="base", perturb=0.5), page)
    assert not torch.equal(other["tokens"], baseline["tokens"])
    weight = torch.ones(4, 4) + torch.arange(16.0).reshape(4, 4)
    before = weight.clone()
    perturb_weight(weight, 0.1, seed=0)
    assert 0 < (weight - before).std() < before.std()


def test_compiled_forward_keeps_stage_hooks_firing():
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    calls: list[str] = []
    module[0].register_forward_hook(lambda *_: calls.append("hook"))
    expected = module(torch.ones(1, 4))
    compile_parts(module, ["0"])
    assert torch.allclose(module(torch.ones(1, 4)), expected)
    assert calls == ["hook", "hook"]
    with pytest.raises(ValueError, match="model.compile"):
        compile_parts(module, ["missing"])


def test_every_compiled_decoder_layer_stays_compiled_through_prefill_and_decode():
    """Layers of one class share one dynamo cache and each specialises on its own cache
    layer: with dynamo's default limit the later ones fell back to eager."""
    torch._dynamo.reset()
    spec = ModelSpec(
        preset="small",
        mode="base",
        experts_implementation="grouped_mm",
        decode="static",
        compile="decoder",
    )
    adapter = build_adapter(spec)
    settings = default_settings(run_id="compiled-layers", max_new_tokens=4)
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        for size in ((700, 1000), (900, 700)):
            page = adapter.preprocess(Image.new("RGB", size, "white"))
            reference_outputs(adapter, page, settings)

"""DeepSeek-OCR adapter: published parameter counts, stage shapes, determinism."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.deepseek_ocr.dims import preset_dims
from vlmprof.models.deepseek_ocr.model import build_module
from vlmprof.models.deepseek_ocr.views import plan_views
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments
from vlmprof.runtime.nvtx_ranges import NvtxRanges


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def full_meta():
    """The full preset on the meta device: shapes without memory."""
    return build_module(preset_dims("full"), "meta", torch.bfloat16)


def test_full_preset_parameter_counts_match_published_figures(full_meta):
    model = full_meta.model
    sam, clip, projector = (
        _params(model.sam_model),
        _params(model.vision_model),
        _params(model.projector),
    )
    total = _params(full_meta)
    decoder = total - sam - clip - projector - 2 * 1280  # minus newline and separator
    assert sam == pytest.approx(95.57e6, rel=1e-3)  # SAM ViT-B + neck + 16x compressor
    assert clip == pytest.approx(303e6, rel=0.01)  # CLIP ViT-L without its pixel stem
    assert projector == 2048 * 1280 + 1280
    assert decoder == 2_934_734_080
    assert total == pytest.approx(3.3e9, rel=0.03)


def test_full_preset_keeps_reference_module_names(full_meta):
    names = dict(full_meta.named_modules())
    for path in (
        "model.sam_model",
        "model.vision_model",
        "model.projector",
        "model.layers.0.mlp",
        "model.layers.11.mlp.experts",
        "lm_head",
    ):
        assert path in names
    assert full_meta.model.layers[0].mlp.gate_proj.out_features == 6848
    experts = full_meta.model.layers[1].mlp.experts
    assert experts.gate_up_proj.shape == (64, 2 * 896, 1280)
    assert full_meta.model.layers[1].mlp.gate.top_k == 6


@pytest.mark.parametrize("view", [1024, 640])
def test_full_preset_vision_stage_shapes(full_meta, view):
    pixels = torch.empty(1, 3, view, view, device="meta", dtype=torch.bfloat16)
    sam = full_meta.model.sam_model(pixels).last_hidden_state
    side = view // 64
    assert sam.shape == (1, 1024, side, side)
    clip = full_meta.model.vision_model(sam)
    assert clip.shape == (1, side * side + 1, 1024)
    assert full_meta.model.encode_views(pixels).shape == (1, side, side, 1280)


@pytest.fixture(scope="module")
def small():
    return build_adapter(ModelSpec(preset="small", mode="gundam", seed=3))


def _page(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    image.paste((20, 20, 20), (width // 10, height // 10, width // 2, height // 8))
    return image


@pytest.mark.parametrize(
    ("size", "mode"), [((1240, 1754), "gundam"), ((1240, 1754), "base"), ((600, 500), "gundam")]
)
def test_small_preset_prefill_matches_token_plan(small, size, mode):
    small.spec = ModelSpec(preset="small", mode=mode, seed=3)
    inputs = small.preprocess(_page(*size))
    plan = plan_views(*size, mode)
    assert inputs.image_tokens == plan.image_tokens
    assert int((inputs.input_ids == 2).sum()) == plan.image_tokens
    with torch.inference_mode():
        logits, state = small.prefill(inputs, 1)
    assert logits.shape == (1, small.dims.decoder.vocab)
    assert state.cache.get_seq_length() == inputs.prefill_len


def test_same_seed_same_tokens():
    page = _page(1275, 1650)
    runs = []
    for _ in range(2):
        adapter = build_adapter(ModelSpec(preset="small", mode="gundam", seed=7))
        inputs = adapter.preprocess(page)
        instruments = Instruments(None, NvtxRanges(enabled=False))
        runs.append(greedy_generate(adapter, inputs, 8, instruments))
    assert runs[0].tolist() == runs[1].tolist()
    assert runs[0].numel() == 8


def test_other_seed_other_weights():
    a = build_adapter(ModelSpec(preset="small", seed=1)).module.lm_head.weight
    b = build_adapter(ModelSpec(preset="small", seed=2)).module.lm_head.weight
    assert not torch.equal(a, b)


def test_overrides_change_dimensions_and_bad_keys_are_named():
    dims = preset_dims("small", {"decoder": {"layers": 5}})
    assert dims.decoder.layers == 5
    with pytest.raises(ValueError, match="model.overrides.decoder.nope"):
        preset_dims("small", {"decoder": {"nope": 1}})
    with pytest.raises(ValueError, match="model.preset"):
        preset_dims("huge")

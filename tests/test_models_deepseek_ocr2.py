"""DeepSeek-OCR-2 adapter: published dimensions, image tokens against transformers' own
processor, stage shapes and hooks, determinism and checkpoints (its run through the workflow:
tests/test_workflow_models.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import (
    get_optimal_tiled_canvas,
)
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionAttention,
)
from transformers.models.deepseek_ocr2.processing_deepseek_ocr2 import DeepseekOcr2Processor

from vlmprof.flops import analytic
from vlmprof.flops.static_compute import AGREEMENT_TOLERANCE, build_static_compute
from vlmprof.models import ModelSpec, build_adapter, check_preset, spec_dims
from vlmprof.models.deepseek_ocr.checkpoint import CheckpointError
from vlmprof.models.deepseek_ocr.dims import DecoderDims
from vlmprof.models.deepseek_ocr2.checkpoint import read_dims, save_checkpoint
from vlmprof.models.deepseek_ocr2.dims import preset_dims
from vlmprof.models.deepseek_ocr2.model import build_module
from vlmprof.models.deepseek_ocr2.preprocess import image_processor
from vlmprof.models.deepseek_ocr2.views import plan_views
from vlmprof.models.prompt_tokenizer import IMAGE_TOKEN_ID
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer

FULL = preset_dims("full")
SMALL = preset_dims("small")
A4 = (1240, 1754)  # gundam: a 2 x 3 grid of 768-pixel tiles
UNTILED = (600, 500)  # both sides <= 768: the global view only


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _page(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    image.paste((20, 20, 20), (width // 10, height // 10, width // 2, height // 8))
    return image


def _spec(**fields: object) -> ModelSpec:
    return ModelSpec(**{"name": "deepseek_ocr2", "preset": "small", **fields})


@pytest.fixture(scope="module")
def full_meta():
    """The full preset on the meta device: shapes without memory."""
    return build_module(FULL, "meta", torch.bfloat16)


@pytest.fixture(scope="module")
def small():
    return build_adapter(_spec(seed=3))


def test_full_preset_has_the_published_dimensions():
    assert FULL.sam.width == 768 and FULL.sam.depth == 12
    assert FULL.sam.compressor_channels == (512, 896)
    enc = FULL.encoder
    assert (enc.width, enc.depth, enc.heads, enc.kv_heads, enc.ffn) == (896, 24, 14, 2, 4864)
    assert FULL.decoder == DecoderDims()  # DeepSeek-OCR's DeepSeek-3B-MoE, unchanged
    assert (FULL.projector_in, FULL.projector_out) == (896, 1280)


def test_full_preset_parameter_counts(full_meta):
    tower = full_meta.model.vision_tower
    # DeepSeek-OCR's 95,569,152 SAM parameters less 128 of the last conv's 1024 channels.
    assert _params(tower.sam_encoder) == 95_569_152 - 128 * 512 * 9
    # Qwen2-0.5B's 24 layers and final norm (its token embedding removed).
    assert _params(tower.vision_encoder) == 357_898_112
    queries = _params(tower.query_768_resolution) + _params(tower.query_1024_resolution)
    assert queries == (144 + 256) * 896
    assert _params(full_meta.model.multi_modal_projector) == 896 * 1280 + 1280
    decoder = _params(full_meta.model.language_model) + _params(full_meta.lm_head)
    assert decoder == 2_934_734_080
    counts = analytic.param_counts(FULL)
    assert counts["encoder"] == 357_898_112 + queries
    assert counts["total"] == _params(full_meta)


@pytest.mark.parametrize("view", [1024, 768])
def test_full_preset_vision_stage_shapes(full_meta, view):
    tower = full_meta.model.vision_tower
    pixels = torch.empty(1, 3, view, view, device="meta", dtype=torch.bfloat16)
    side = view // 64
    assert tower.sam_encoder(pixels).last_hidden_state.shape == (1, 896, side, side)
    queries = tower(pixels).last_hidden_state
    assert queries.shape == (1, side * side, 896)
    assert full_meta.model.multi_modal_projector(queries).shape == (1, side * side, 1280)


def _word_tokenizer() -> PreTrainedTokenizerFast:
    """A local word-level tokenizer with the `<image>` token the processor expands."""
    vocab = {"<unk>": 0, "<image>": 1, "hello": 2}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", additional_special_tokens=["<image>"]
    )


@pytest.mark.parametrize(
    ("size", "mode"),
    [
        (A4, "gundam"),
        (UNTILED, "gundam"),
        ((800, 300), "gundam"),
        ((3000, 700), "gundam"),
        (A4, "base"),
        (A4, "small"),
    ],
)
def test_image_tokens_match_transformers_processor(size, mode):
    settings = image_processor(mode, 6)
    processor = DeepseekOcr2Processor(image_processor=settings, tokenizer=_word_tokenizer())
    # The processor's own defaults (crops on) win unless the mode's settings are passed.
    out = processor(
        images=_page(*size),
        text="<image>\nhello",
        return_tensors="pt",
        crop_to_patches=settings.crop_to_patches,
        tile_size=settings.tile_size,
        size=dict(settings.size),
    )
    plan = plan_views(*size, mode)
    assert int((out["input_ids"] == 1).sum()) == plan.image_tokens
    assert int(out["num_local_patches"][0]) == plan.n_crops


def test_published_token_budget():
    # (0-6) x 144 local + 256 global visual tokens, plus the view separator.
    assert plan_views(*A4, "gundam").image_tokens == 6 * 144 + 256 + 1
    assert plan_views(*UNTILED, "gundam").image_tokens == 256 + 1


def test_tile_grid_matches_transformers_over_many_page_sizes():
    for max_crops in (2, 6, 9):
        for width in range(200, 4000, 97):
            for height in range(200, 4000, 89):
                plan = plan_views(width, height, "gundam", max_crops)
                expected = (1, 1)
                if max(width, height) > 768:
                    expected = get_optimal_tiled_canvas((height, width), (768, 768), 2, max_crops)
                assert (plan.tiles_w, plan.tiles_h) == tuple(expected), (width, height)


@pytest.mark.parametrize(("size", "mode"), [(A4, "gundam"), (A4, "base"), (UNTILED, "gundam")])
def test_small_preset_prefill_matches_token_plan(size, mode):
    adapter = build_adapter(_spec(mode=mode, seed=3))
    inputs = adapter.preprocess(_page(*size))
    plan = plan_views(*size, mode)
    assert inputs.image_tokens == plan.image_tokens
    assert int((inputs.input_ids == IMAGE_TOKEN_ID).sum()) == plan.image_tokens
    assert inputs.pixel_views["global"].shape == (1, 3, 1024, 1024)
    if plan.n_crops:
        assert inputs.pixel_views["crops"].shape == (plan.n_crops, 3, 768, 768)
    else:
        assert "crops" not in inputs.pixel_views
    with torch.inference_mode():
        logits, state = adapter.prefill(inputs, 1)
    assert logits.shape == (1, SMALL.decoder.vocab)
    assert state.cache.get_seq_length() == inputs.prefill_len


def test_stage_hooks_fire_once_per_view_batch(small):
    inputs = small.preprocess(_page(*A4))
    timer = StageTimer("cpu")
    instruments = Instruments(timer, NvtxRanges(enabled=False))
    handles = attach_stage_hooks(small.module, small.stage_modules(), instruments)
    try:
        with instruments.stage("prefill"), torch.inference_mode():
            small.prefill(inputs, 1)
    finally:
        detach(handles)
    times = timer.finish()
    for stage in ("sam", "clip", "projector"):
        # The global view, then the six tiles as one batch.
        assert len(times[stage]) == 2 and min(times[stage]) > 0, stage
    vision = sum(sum(times[stage]) for stage in ("sam", "clip", "projector"))
    assert vision < times["prefill"][0]


def test_same_seed_same_tokens_other_seed_other_weights():
    page = _page(*UNTILED)
    runs = []
    for _ in range(2):
        adapter = build_adapter(_spec(seed=7))
        instruments = Instruments(None, NvtxRanges(enabled=False))
        runs.append(greedy_generate(adapter, adapter.preprocess(page), 6, instruments))
    assert runs[0].tolist() == runs[1].tolist() and runs[0].numel() == 6
    a = build_adapter(_spec(seed=1)).module.model.vision_tower.vision_encoder
    b = build_adapter(_spec(seed=2)).module.model.vision_tower.vision_encoder
    assert not torch.equal(a.layers[0].mlp.up_proj.weight, b.layers[0].mlp.up_proj.weight)


def test_static_kv_cache_decodes_the_same_tokens():
    page = _page(*UNTILED)
    runs = {}
    for decode in ("eager", "static"):
        adapter = build_adapter(_spec(seed=5, decode=decode))
        instruments = Instruments(None, NvtxRanges(enabled=False))
        runs[decode] = greedy_generate(adapter, adapter.preprocess(page), 6, instruments).tolist()
    assert runs["static"] == runs["eager"]


def test_implementation_switches_reach_every_part():
    adapter = build_adapter(_spec(attn_implementation="eager", experts_implementation="batched_mm"))
    model = adapter.module.model
    assert model.language_model.config._experts_implementation == "batched_mm"
    assert type(model.vision_tower.sam_encoder.layers[0].attn) is DeepseekOcr2SamVisionAttention
    assert model.vision_tower.vision_encoder.config._attn_implementation == "eager"


def test_overrides_change_dimensions_and_bad_keys_are_named():
    assert preset_dims("small", {"encoder": {"depth": 3}}).encoder.depth == 3
    check_preset("deepseek_ocr2", "small", {"decoder": {"layers": 4}})
    assert spec_dims("deepseek_ocr2", "small", {}, None) == SMALL
    with pytest.raises(ValueError, match=r"model\.overrides\.encoder\.nope"):
        check_preset("deepseek_ocr2", "small", {"encoder": {"nope": 1}})
    with pytest.raises(ValueError, match=r"model\.overrides\.clip: unknown part"):
        check_preset("deepseek_ocr2", "small", {"clip": {"width": 64}})
    with pytest.raises(ValueError, match=r"sam\.compressor_channels\[-1\] must equal encoder"):
        check_preset("deepseek_ocr2", "small", {"encoder": {"width": 256}})
    with pytest.raises(ValueError, match=r"sam\.patch must be 16"):
        check_preset("deepseek_ocr2", "small", {"sam": {"patch": 8}})
    with pytest.raises(ValueError, match="model.preset"):
        check_preset("deepseek_ocr2", "huge", {})


def test_analytic_flops_agree_with_both_counters_on_the_real_model():
    report = build_static_compute(SMALL, ["gundam"], 300, 310, "float32")
    expected = {f"{part}_{view}" for part in ("sam", "clip", "projector") for view in (1024, 768)}
    assert expected | {"vision_gundam", "llm_prefill", "decode_step"} == set(report["stages"])
    for name, entry in report["stages"].items():
        assert abs(entry["rel_diff_flopcountermode"]) <= AGREEMENT_TOLERANCE, name
        assert abs(entry["fvcore_gap"]["rel_diff_after"]) <= AGREEMENT_TOLERANCE, name
    gundam = report["stages"]["vision_gundam"]
    assert (gundam["n_crops"], gundam["image_tokens"]) == (6, 6 * 144 + 256 + 1)
    views = analytic.view_cost(SMALL, 1024, 4)["clip"].flops
    views += 6 * analytic.view_cost(SMALL, 768, 4)["clip"].flops
    assert analytic.vision_cost(SMALL, "gundam", 6, 4)["clip"].flops == views


def test_checkpoint_round_trip_gives_the_same_logits(small, tmp_path: Path):
    directory = save_checkpoint(small.module, tmp_path / "ckpt")
    loaded = build_adapter(_spec(checkpoint=str(directory), seed=99))
    assert loaded.dims == small.dims == read_dims(directory)
    assert spec_dims("deepseek_ocr2", "full", {}, str(directory)) == small.dims
    inputs = small.preprocess(_page(*UNTILED))
    with torch.inference_mode():
        expected, _ = small.prefill(inputs, 1)
        got, _ = loaded.prefill(inputs, 1)
    assert torch.equal(got, expected)


def test_checkpoint_in_another_format_is_refused(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "deepseek_vl_v2"}))
    with pytest.raises(CheckpointError, match="deepseek_vl_v2"):
        read_dims(tmp_path)
    with pytest.raises(CheckpointError, match="no config.json"):
        read_dims(tmp_path / "missing")

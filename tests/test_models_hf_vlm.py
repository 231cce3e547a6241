"""Generic transformers VLM adapter: each architecture's small preset on the CPU, seeded,
its stages hooked, its greedy loop equal to the model's own generate, its static-cache
decode equal to the released one and passing the correctness gate against its own float64
oracle (its best path on a CPU), its static compute its parameters by part."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import torch
import transformers
import yaml
from PIL import Image
from tokenizers import Tokenizer, models

from tests.workflow_helpers import REPO, default_config, default_settings
from vlmprof.flops.counted_static import counted_static_compute
from vlmprof.models import ModelSpec, build_adapter, check_preset
from vlmprof.models.base import ModelInputs
from vlmprof.models.hf_vlm.adapter import HfVlmAdapter
from vlmprof.models.hf_vlm.architectures import ARCHITECTURES
from vlmprof.models.hf_vlm.inputs import (
    IMAGE_SPANS,
    PROMPT_AFTER,
    PROMPT_BEFORE,
    STAND_IN_BOUNDS,
)
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer
from vlmprof.runtime.untimed_runs import reference_outputs
from vlmprof.variants.best_path import best_switches
from vlmprof.variants.gate import GateFactors
from vlmprof.variants.gate_runs import GateRuns

A4_150_DPI = Image.new("RGB", (1240, 1754), "white")
WIDE = Image.new("RGB", (1754, 400), "white")
ARCHS = sorted(ARCHITECTURES)


def no_settings(_adapter: HfVlmAdapter) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class OwnProcessor:
    """An architecture's transformers processor built offline around our image processor: its
    class, the stand-in tokenizer's special tokens (keyed by the tokenizer attributes the
    processor reads; spelled as the published tokenizers spell them where known), the text the
    checkpoint's chat template writes for one image, and the processor's settings at
    construction and at the call, from the built model where they follow its dimensions (image
    tokens per tile) so that the small presets' hold."""

    processor_class: type
    specials: dict[str, str]
    template: str
    settings: Callable[[HfVlmAdapter], dict[str, Any]] = no_settings
    call: Callable[[HfVlmAdapter], dict[str, Any]] = no_settings


def without_video(processor_class: type) -> type:
    """`processor_class` without its video processor, which needs torchvision (not installed
    for the tests): its image path (placeholder expansion, token types) is the class's own."""
    return type(
        processor_class.__name__,
        (processor_class,),
        {"get_attributes": classmethod(lambda _cls: ["image_processor", "tokenizer"])},
    )


OWN_PROCESSORS = {
    "qwen2_5_vl": OwnProcessor(
        without_video(transformers.Qwen2_5_VLProcessor),
        {
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_start_token": "<|vision_start|>",
            "vision_end_token": "<|vision_end|>",
        },
        "<|vision_start|><|image_pad|><|vision_end|>",
    ),
    "got_ocr2": OwnProcessor(
        transformers.GotOcr2Processor,
        {"image_token": "<imgpad>", "image_start": "<img>", "image_end": "</img>"},
        # What the processor's own conversation writes for one page.
        "<img><imgpad></img>",
        # Multi-crop mode with our tile budget; per tile the checkpoint's processor says 256,
        # the encoder's grid at 1024 px after the projector's two stride-2 convolutions.
        call=lambda adapter: {
            "crop_to_patches": True,
            "max_patches": adapter.processor.max_patches,
            "num_image_tokens": (
                adapter.config.vision_config.image_size
                // adapter.config.vision_config.patch_size
                // 4
            )
            ** 2,
        },
    ),
    "lighton_ocr": OwnProcessor(
        transformers.LightOnOcrProcessor,
        {
            "image_token": "<|image_pad|>",
            "image_break_token": "<|vision_pad|>",
            "image_end_token": "<|vision_end|>",
        },
        # Its chat template puts nothing around the placeholder, and this transformers'
        # processor lays out no row-break or end tokens (its tokenizer has them).
        "<|image_pad|>",
        settings=lambda _adapter: {"patch_size": 14, "spatial_merge_size": 2},
    ),
    "paddleocr_vl": OwnProcessor(
        transformers.PaddleOCRVLProcessor,
        {
            "image_token": "<|IMAGE_PLACEHOLDER|>",
            "image_start": "<|IMAGE_START|>",
            "image_end": "<|IMAGE_END|>",
        },
        "<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>",
    ),
    "glm_ocr": OwnProcessor(
        without_video(transformers.Glm46VProcessor),
        {
            "image_token": "<|image|>",
            "image_start": "<|begin_of_image|>",
            "image_end": "<|end_of_image|>",
        },
        "<|begin_of_image|><|image|><|end_of_image|>",
    ),
    "hunyuan_vl": OwnProcessor(
        transformers.HunYuanVLProcessor,
        {
            "image_token": "<image>",
            "image_start_token": "<image_start>",
            "image_end_token": "<image_end>",
            "pad_token": "<pad>",
        },
        # The processor refuses a placeholder without its start and end tokens.
        "<image_start><image><image_end>",
    ),
    "qianfan_ocr": OwnProcessor(
        transformers.QianfanOCRProcessor,
        {
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
        },
        # Its chat template's placeholder, which the processor replaces with <img>, the
        # context tokens and </img>.
        "<image>",
        settings=lambda adapter: {"image_seq_length": adapter.config.image_seq_length},
    ),
    "granite_docling": OwnProcessor(
        transformers.GraniteDoclingProcessor,
        {
            "image_token": "<image>",
            "fake_image_token": "<fake_token_around_image>",
            "global_image_tag": "<global-img>",
            # The row-column tags of grids up to 6 x 6 tiles, one token each.
            **{
                f"row_{row}_col_{col}": f"<row_{row}_col_{col}>"
                for row in range(1, 7)
                for col in range(1, 7)
            },
        },
        "<image>",
        settings=lambda adapter: {"image_seq_len": adapter.module.model.image_seq_len},
    ),
}


@pytest.fixture(scope="module", params=ARCHS)
def adapter(request):
    return build_adapter(ModelSpec(name="hf_vlm", architecture=request.param))


def _inputs(adapter, page: Image.Image = A4_150_DPI) -> ModelInputs:
    return adapter.preprocess(page).to(adapter.device, adapter.dtype)


def test_weights_are_seeded(adapter):
    inputs = _inputs(adapter)
    again = build_adapter(adapter.spec)
    other = build_adapter(replace(adapter.spec, seed=1))
    with torch.inference_mode():
        logits = adapter.prefill(inputs, 1)[0]
        assert logits.shape == (1, adapter.config.text_config.vocab_size)
        assert torch.equal(logits, again.prefill(inputs, 1)[0])
        assert not torch.equal(logits, other.prefill(inputs, 1)[0])


def test_stage_hooks_fire_in_prefill_only(adapter):
    inputs = _inputs(adapter)
    timer = StageTimer("cpu")
    labels: list[str] = []
    handles = attach_stage_hooks(
        adapter.module, adapter.stage_modules(), Instruments(timer, NvtxRanges(enabled=False))
    )
    seen = [
        adapter.module.get_submodule(path).register_forward_hook(
            lambda *_, path=path: labels.append(path)
        )
        for path in adapter.stage_modules()
    ]
    try:
        with torch.inference_mode():
            logits, state = adapter.prefill(inputs, 2)
            assert sorted(labels) == sorted(adapter.stage_modules())
            labels.clear()
            adapter.decode_step(logits.argmax(-1, keepdim=True), state)
            assert labels == []
    finally:
        detach(handles + seen)
    times = timer.finish()
    assert set(times) == {"clip", "projector"}
    # One interval per projector module (GLM-OCR's is a convolution, then its merger).
    assert len(times["projector"]) == len(adapter.arch.projector)


def test_the_stage_modules_hold_every_weight_outside_the_decoder(adapter):
    # So no part of the vision tower or its projector runs untimed as glue (LLM prefill).
    decoder = adapter.arch.decoder_layers.rsplit(".", 1)[0] + "."
    staged = tuple(f"{path}." for path in adapter.stage_modules())
    outside = [
        name
        for name, _ in adapter.module.named_parameters()
        if not name.startswith((decoder, "lm_head."))
    ]
    assert outside
    assert [name for name in outside if not name.startswith(staged)] == []


def test_greedy_loop_equals_the_models_own_generate(adapter):
    inputs = _inputs(adapter)
    tokens = greedy_generate(adapter, inputs, 6, Instruments(None, NvtxRanges(enabled=False)))
    with torch.inference_mode():
        own = adapter.module.generate(
            input_ids=inputs.input_ids,
            **inputs.pixel_views,
            do_sample=False,
            max_new_tokens=6,
            output_logits=True,
            return_dict_in_generate=True,
        )
        # Logits too, step by step: random weights repeat one token, which alone would not
        # show that decode positions (Qwen's rope offset) match generate's.
        logits, state = adapter.prefill(inputs, 6)
        steps = [logits]
        for token in own.sequences[0, inputs.prefill_len : -1]:
            steps.append(adapter.decode_step(token.view(1, 1), state))
    assert len(tokens) == 6
    assert torch.equal(tokens, own.sequences[0, inputs.prefill_len :])
    for ours, theirs in zip(steps, own.logits, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_a_static_cache_gives_the_released_paths_outputs_page_after_page(adapter):
    static = build_adapter(replace(adapter.spec, decode="static"))
    assert static.describe()["decode"] == "static"
    settings = default_settings(run_id="static-decode", max_new_tokens=6)
    pages = [adapter.preprocess(page) for page in (A4_150_DPI, WIDE)]
    assert pages[0].prefill_len != pages[1].prefill_len
    for inputs in pages:
        eager = reference_outputs(adapter, inputs, settings)
        ours = reference_outputs(static, inputs, settings)
        assert torch.equal(ours["tokens"], eager["tokens"])
        # Every step's top logits too: random weights repeat one token, which alone would not
        # show that each page decodes at its own rope offset (Qwen2.5-VL, PaddleOCR-VL).
        for key in ("first_logits", "top_values"):
            torch.testing.assert_close(ours[key], eager[key], rtol=1e-4, atol=1e-5)
    # Both prompts fit one bucket: one static cache, reset for the second page.
    assert len(static.static.slots) == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_its_best_path_and_eager_attention_pass_the_gate_and_a_perturbed_path_fails(arch):
    gate = default_config()["variant_gate"]
    factors = GateFactors(gate["code_path_factor"], gate["precision_factor"])
    spec = ModelSpec(name="hf_vlm", architecture=arch)
    # The workflow's gate in one process: the released path's outputs, its float64 oracle's,
    # then each path fed the released path's tokens.
    runs = GateRuns(spec, {"a4": A4_150_DPI}, default_settings(max_new_tokens=6), factors)
    best = best_switches(runs.view, {})
    assert best == {"decode": "static"}  # the best path a CPU takes
    for name, switches in (("best", best), ("eager-attention", {"attention": "eager"})):
        verdict = runs.judge(name, switches)
        assert verdict["status"] == "passed", verdict
        assert verdict["code_path_ratio"] <= factors.code_path
    wrong = runs.judge("wrong", {**best, "perturb": 1.0})
    assert wrong["status"] == "failed" and wrong["code_path_ratio"] > factors.code_path


def test_its_static_compute_holds_its_parameters_by_part_and_costs_no_stage(adapter):
    # As the static job makes it: the module tree alone, on the meta device.
    meta = build_adapter(replace(adapter.spec, device="meta", dtype="float32"))
    static = counted_static_compute(meta, "float32")
    assert static["stages"] == {} and static["flops"] == {}
    params = static["params"]
    assert params["total"] == sum(p.numel() for p in adapter.module.parameters())
    assert params["clip"] > 0 and params["projector"] > 0 and "sam" not in params
    assert params["clip"] + params["projector"] + params["decoder_total"] == params["total"]


def test_prompt_holds_the_image_tokens_of_its_page(adapter):
    inputs = _inputs(adapter)
    image_token = adapter.config.image_token_id
    assert int((inputs.input_ids == image_token).sum()) == inputs.image_tokens > 0
    # What the model itself makes of the pixels: rows of decoder width out of the projector.
    rows: list[int] = []
    hidden = adapter.config.text_config.hidden_size
    handle = adapter.module.get_submodule(adapter.arch.projector[-1]).register_forward_hook(
        # (GraniteDocling's connector returns its DeepStack features after the tokens.)
        lambda _m, _a, out: rows.append(
            (out[0] if isinstance(out, tuple) else out).numel() // hidden
        )
    )
    try:
        with torch.inference_mode():
            adapter.prefill(inputs, 1)
    finally:
        handle.remove()
    assert rows == [inputs.image_tokens]
    wide = _inputs(adapter, WIDE)
    assert wide.image_tokens != inputs.image_tokens


# GraniteDocling's processor lays out tiles between tags (its processor test checks that).
@pytest.mark.parametrize("arch", [arch for arch in ARCHS if arch not in IMAGE_SPANS])
def test_image_tokens_are_one_run_between_the_architectures_bounds(arch: str):
    adapter = build_adapter(ModelSpec(name="hf_vlm", architecture=arch))
    inputs = _inputs(adapter)
    bounds = [getattr(adapter.config, key) for key in adapter.arch.image_bounds or ()]
    if adapter.arch.stand_in_bounds:
        bounds = list(STAND_IN_BOUNDS)
    image_run = [adapter.config.image_token_id] * inputs.image_tokens
    # The stand-in text around the run and its bounds (where the architecture has them).
    expected = [*PROMPT_BEFORE, *bounds[:1], *image_run, *bounds[1:], *PROMPT_AFTER]
    assert inputs.input_ids.tolist() == [expected]


def layout(ids: list[int], image_token_id: int) -> list[tuple[str, int]]:
    """A prompt as runs of image and other tokens, e.g. [("text", 1), ("image", 64), ...]."""
    kinds = ("image" if token == image_token_id else "text" for token in ids)
    return [(kind, len(list(run))) for kind, run in itertools.groupby(kinds)]


@pytest.mark.parametrize("page", [A4_150_DPI, WIDE], ids=["a4", "wide"])
@pytest.mark.parametrize("arch", ARCHS)
def test_the_architectures_own_processor_lays_out_the_image_alike(arch: str, page):
    adapter = build_adapter(ModelSpec(name="hf_vlm", architecture=arch))
    own = OWN_PROCESSORS[arch]
    vocab = {"<unk>": 0, **{token: i + 1 for i, token in enumerate(own.specials.values())}}
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
        unk_token="<unk>",
        extra_special_tokens=own.specials,
    )
    processor = own.processor_class(
        image_processor=adapter.processor, tokenizer=tokenizer, **own.settings(adapter)
    )
    theirs = processor(images=page, text=own.template, return_tensors="pt", **own.call(adapter))
    image_id = vocab[processor.image_token]
    ours = adapter.preprocess(page)
    span = slice(len(PROMPT_BEFORE), -len(PROMPT_AFTER))
    # As many image tokens, between as many other tokens, in the same places.
    assert layout(ours.input_ids[0, span].tolist(), adapter.config.image_token_id) == layout(
        theirs["input_ids"][0].tolist(), image_id
    )
    if adapter.arch.token_types:  # what the multimodal rope reads as the image's tokens
        ours_types = ours.pixel_views["mm_token_type_ids"][0, span]
        assert ours_types.tolist() == theirs["mm_token_type_ids"][0].tolist()


def test_integer_inputs_keep_their_dtype_on_the_way_to_the_model():
    inputs = ModelInputs(
        input_ids=torch.zeros(1, 3, dtype=torch.long),
        pixel_views={"pixel_values": torch.zeros(2, 4), "image_grid_thw": torch.ones(1, 3).long()},
        mode="native",
        n_crops=0,
        image_tokens=1,
    )
    moved = inputs.to("cpu", torch.bfloat16)
    assert moved.pixel_views["pixel_values"].dtype == torch.bfloat16
    assert moved.pixel_views["image_grid_thw"].dtype == torch.long


def test_describe_and_bad_settings_are_named(adapter):
    described = adapter.describe()
    assert described["architecture"] == adapter.spec.architecture
    assert (described["model"], described["preset"]) == ("hf_vlm", "small")
    spec = adapter.spec
    with pytest.raises(ValueError, match="model.architecture: unknown architecture 'nope'"):
        build_adapter(replace(spec, architecture="nope"))
    with pytest.raises(ValueError, match="vision: hf_vlm runs the model's own forward"):
        build_adapter(replace(spec, vision="cuda_graph"))
    with pytest.raises(ValueError, match="model.preset: unknown preset 'tiny' for hf_vlm"):
        check_preset("hf_vlm", "tiny", {})
    check_preset("hf_vlm", "small", {})
    check_preset("hf_vlm", "full", {"text_config": {"num_hidden_layers": 2}})


def test_full_presets_build_at_their_published_size():
    # On the meta device: shapes only, no memory.
    params = {}
    for arch in ARCHS:
        spec = ModelSpec(name="hf_vlm", architecture=arch, preset="full", device="meta")
        params[arch] = build_adapter(spec).describe()["params"]
    assert 3.5e9 < params["qwen2_5_vl"] < 4.0e9  # "3B": 3.75B with the vision tower
    assert 0.5e9 < params["got_ocr2"] < 0.65e9  # GOT-OCR-2.0: about 580M
    assert 0.95e9 < params["lighton_ocr"] < 1.05e9  # LightOnOCR-1B: 1.01B
    assert 0.85e9 < params["paddleocr_vl"] < 0.95e9  # PaddleOCR-VL-0.9B: 0.91B
    # GLM-OCR's "0.9B" is its encoder and decoder layers (0.40B + 0.49B), not its untied
    # embeddings and head (0.18B): 1.11B in all.
    assert 1.05e9 < params["glm_ocr"] < 1.15e9
    assert 0.95e9 < params["hunyuan_vl"] < 1.05e9  # HunyuanOCR "1B": 1.00B
    # Qianfan-OCR "4B" (3.6B in the decoder's layers), untied: 4.73B.
    assert 4.5e9 < params["qianfan_ocr"] < 4.9e9
    assert 0.5e9 < params["granite_docling"] < 0.6e9  # granite-for-docling-500m: 0.54B


def test_the_config_schema_offers_exactly_the_tables_architectures():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    offered = schema["properties"]["model"]["properties"]["architecture"]["enum"]
    assert offered == list(ARCHITECTURES)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_a_checkpoint_directory_gives_the_model_it_holds(name: str, tmp_path):
    built = build_adapter(ModelSpec(name="hf_vlm", architecture=name, seed=3))
    built.module.save_pretrained(tmp_path)
    built.processor.save_pretrained(tmp_path)
    loaded = build_adapter(ModelSpec(name="hf_vlm", architecture=name, checkpoint=str(tmp_path)))
    saved, read = built.module.state_dict(), loaded.module.state_dict()
    assert saved.keys() == read.keys()
    assert all(torch.equal(saved[key], read[key]) for key in saved)
    page = Image.new("RGB", (1240, 1754), "white")
    ours, theirs = built.preprocess(page), loaded.preprocess(page)
    assert torch.equal(ours.input_ids, theirs.input_ids)
    with torch.no_grad():
        # Equal weights; the loaded tensors' layouts may round the last bit differently.
        torch.testing.assert_close(built.prefill(ours, 1)[0], loaded.prefill(theirs, 1)[0])
    meta = ModelSpec(name="hf_vlm", architecture=name, checkpoint=str(tmp_path), device="meta")
    tree = build_adapter(replace(meta, dtype="float32")).module
    assert sum(p.numel() for p in tree.parameters()) == (
        sum(p.numel() for p in built.module.parameters())
    )


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    build_adapter(ModelSpec(name="hf_vlm", architecture="got_ocr2")).module.save_pretrained(
        tmp_path
    )
    with pytest.raises(ValueError, match="holds a 'got_ocr2' model, not model.architecture"):
        build_adapter(
            ModelSpec(name="hf_vlm", architecture="lighton_ocr", checkpoint=str(tmp_path))
        )

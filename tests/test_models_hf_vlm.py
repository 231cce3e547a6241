"""Generic transformers VLM adapter: each architecture's small preset on the CPU, seeded,
its stages hooked, its greedy loop equal to the model's own generate, its static-cache
decode equal to the released one."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import transformers
import yaml
from PIL import Image
from tokenizers import Tokenizer, models

from tests.workflow_helpers import REPO, default_settings
from vlmprof.models import ModelSpec, build_adapter, check_preset
from vlmprof.models.base import ModelInputs
from vlmprof.models.hf_vlm.architectures import ARCHITECTURES
from vlmprof.models.hf_vlm.inputs import PROMPT_AFTER, PROMPT_BEFORE
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.profile_shard import reference_outputs
from vlmprof.runtime.stage_timer import StageTimer

A4_150_DPI = Image.new("RGB", (1240, 1754), "white")
WIDE = Image.new("RGB", (1754, 400), "white")
ARCHS = sorted(ARCHITECTURES)
# Architectures whose transformers processor builds offline from our image processor and a
# stand-in tokenizer: its class, the tokenizer's special tokens (spelled as the published
# tokenizers spell them) and the processor's own settings (the checkpoints' values).
OWN_PROCESSORS = {
    "lighton_ocr": (
        "LightOnOcrProcessor",
        {
            "image_token": "<|image_pad|>",
            "image_break_token": "<|vision_pad|>",
            "image_end_token": "<|vision_end|>",
        },
        {"patch_size": 14, "spatial_merge_size": 2},
    ),
    "paddleocr_vl": ("PaddleOCRVLProcessor", {"image_token": "<|IMAGE_PLACEHOLDER|>"}, {}),
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
        logits = adapter.prefill(inputs)[0]
        assert logits.shape == (1, adapter.config.text_config.vocab_size)
        assert torch.equal(logits, again.prefill(inputs)[0])
        assert not torch.equal(logits, other.prefill(inputs)[0])


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
            logits, state = adapter.prefill(inputs)
            assert sorted(labels) == sorted(adapter.stage_modules())
            labels.clear()
            adapter.decode_step(logits.argmax(-1, keepdim=True), state)
            assert labels == []
    finally:
        detach(handles + seen)
    times = timer.finish()
    assert set(times) == {"clip", "projector"}
    assert len(times["projector"]) == 1


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
        logits, state = adapter.prefill(inputs)
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


def test_prompt_holds_the_image_tokens_of_its_page(adapter):
    inputs = _inputs(adapter)
    image_token = adapter.config.image_token_id
    assert int((inputs.input_ids == image_token).sum()) == inputs.image_tokens > 0
    # What the model itself makes of the pixels: rows of decoder width out of the projector.
    rows: list[int] = []
    hidden = adapter.config.text_config.hidden_size
    handle = adapter.module.get_submodule(adapter.arch.projector).register_forward_hook(
        lambda _m, _a, out: rows.append(out.numel() // hidden)
    )
    try:
        with torch.inference_mode():
            adapter.prefill(inputs)
    finally:
        handle.remove()
    assert rows == [inputs.image_tokens]
    wide = _inputs(adapter, WIDE)
    assert wide.image_tokens != inputs.image_tokens


def test_image_tokens_are_one_run_between_the_architectures_bounds(adapter):
    inputs = _inputs(adapter)
    bounds = [getattr(adapter.config, key) for key in adapter.arch.image_bounds or ()]
    image_run = [adapter.config.image_token_id] * inputs.image_tokens
    # The stand-in text around the run and its bounds (where the architecture has them).
    expected = [*PROMPT_BEFORE, *bounds[:1], *image_run, *bounds[1:], *PROMPT_AFTER]
    assert inputs.input_ids.tolist() == [expected]


@pytest.mark.parametrize("page", [A4_150_DPI, WIDE], ids=["a4", "wide"])
@pytest.mark.parametrize("arch", sorted(OWN_PROCESSORS))
def test_the_architectures_own_processor_expands_its_placeholder_alike(arch: str, page):
    adapter = build_adapter(ModelSpec(name="hf_vlm", architecture=arch))
    class_name, specials, settings = OWN_PROCESSORS[arch]
    vocab = {"<unk>": 0, **{token: i + 1 for i, token in enumerate(specials.values())}}
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
        unk_token="<unk>",
        extra_special_tokens=specials,
    )
    processor = getattr(transformers, class_name)(
        image_processor=adapter.processor, tokenizer=tokenizer, **settings
    )
    ids = processor(images=page, text=specials["image_token"], return_tensors="pt")["input_ids"]
    # Image tokens only: no row-break or end tokens (LightOnOCR's tokenizer has them, its
    # processor in this transformers does not lay them out).
    assert ids.tolist() == [[tokenizer.image_token_id] * adapter.preprocess(page).image_tokens]


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
        torch.testing.assert_close(built.prefill(ours)[0], loaded.prefill(theirs)[0])
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

"""DeepSeek-OCR local checkpoints: round trip, tokenizer, and errors naming the directory."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.deepseek_ocr_checkpoint import (
    CheckpointError,
    HfPromptTokenizer,
    dims_from_config,
    read_dims,
    save_checkpoint,
)
from vlmprof.models.deepseek_ocr_dims import preset_dims
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments
from vlmprof.runtime.nvtx_ranges import NvtxRanges

SPEC = ModelSpec(preset="small", mode="tiny", seed=3)
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The small random model and the directory it was saved to."""
    adapter = build_adapter(SPEC)
    directory = save_checkpoint(adapter, tmp_path_factory.mktemp("ckpt") / "deepseek-ocr")
    return adapter, directory


@pytest.fixture(scope="module")
def page():
    return Image.new("RGB", (700, 900), (240, 240, 240))


def _generate(adapter, page) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = adapter.preprocess(page).to(adapter.device, adapter.dtype)
    with torch.inference_mode():
        logits, _ = adapter.prefill(inputs)
    instruments = Instruments(None, NvtxRanges(enabled=False))
    return logits, greedy_generate(adapter, inputs, NEW_TOKENS, instruments)


def test_round_trip_gives_identical_logits_and_tokens(saved, page):
    adapter, directory = saved
    loaded = build_adapter(replace(SPEC, checkpoint=str(directory), seed=99))
    assert loaded.dims == adapter.dims
    assert loaded.stage_modules() == adapter.stage_modules()
    names = dict(loaded.module.named_modules())
    assert all(path in names for path in loaded.stage_modules())
    logits, tokens = _generate(adapter, page)
    loaded_logits, loaded_tokens = _generate(loaded, page)
    assert torch.equal(logits, loaded_logits)
    assert torch.equal(tokens, loaded_tokens)
    assert not any(t.is_meta for t in loaded.module.state_dict().values())
    assert loaded.describe()["checkpoint"] == str(directory)


def test_saved_files_use_reference_names_and_config_sections(saved):
    _, directory = saved
    keys = set(load_file(str(directory / "model.safetensors")))
    assert "lm_head.weight" in keys
    assert "model.projector.weight" in keys
    assert any(k.startswith("model.sam_model.") for k in keys)
    assert any(k.startswith("model.vision_model.") for k in keys)
    assert any(k.startswith("model.layers.2.mlp.") for k in keys)
    config = json.loads((directory / "config.json").read_text())
    assert config["language_config"]["vocab_size"] == preset_dims("small").decoder.vocab
    assert config["projector_config"]["input_dim"] == preset_dims("small").projector_in


def test_released_style_config_without_our_block_reads_the_decoder(saved):
    _, directory = saved
    config = json.loads((directory / "config.json").read_text())
    del config["vlmprof_dims"]
    dims = dims_from_config(config)
    assert dims.decoder == preset_dims("small").decoder
    assert dims.sam == preset_dims("full").sam


def test_missing_directory_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(CheckpointError, match=f"model.checkpoint: {missing} is not a directory"):
        build_adapter(replace(SPEC, checkpoint=str(missing)))


def test_directory_without_config_or_weights_is_named(tmp_path, saved):
    _, directory = saved
    with pytest.raises(CheckpointError, match="has no config.json"):
        read_dims(tmp_path)
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"has no \*\.safetensors"):
        build_adapter(replace(SPEC, checkpoint=str(tmp_path)))


def test_mismatched_key_is_named(tmp_path, saved):
    _, directory = saved
    state = load_file(str(directory / "model.safetensors"))
    state["model.projector.weight_renamed"] = state.pop("model.projector.weight")
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    with pytest.raises(CheckpointError) as error:
        build_adapter(replace(SPEC, checkpoint=str(tmp_path)))
    message = str(error.value)
    assert str(tmp_path) in message and "\n" not in message
    assert "missing keys ['model.projector.weight']" in message
    assert "unexpected keys ['model.projector.weight_renamed']" in message


def test_wrong_shape_is_named(tmp_path, saved):
    _, directory = saved
    state = load_file(str(directory / "model.safetensors"))
    state["model.projector.bias"] = torch.zeros(3)
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    with pytest.raises(CheckpointError, match="model.projector.bias"):
        build_adapter(replace(SPEC, checkpoint=str(tmp_path)))


def _write_tokenizer(directory) -> None:
    """A tiny word-level tokenizer with the released model's special tokens."""
    words = ["<unk>", "<bos>", "<eos>", "<image>", "<|grounding|>", "\n"]
    words += ["Convert", "the", "document", "to", "markdown", "."]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", "removed"), pre_tokenizers.Split(Regex(r"\n|\."), "isolated")]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>", "<|grounding|>"]})
    tokenizer.save_pretrained(str(directory))


def test_checkpoint_tokenizer_builds_the_prompt_and_sets_eos(tmp_path, saved, page):
    _, directory = saved
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    _write_tokenizer(tmp_path)
    loaded = build_adapter(replace(SPEC, checkpoint=str(tmp_path)))
    assert isinstance(loaded.tokenizer, HfPromptTokenizer)
    assert loaded.eos_token_id == 2
    assert loaded.image_token_id == 3
    inputs = loaded.preprocess(page)
    text = [5, 4, 6, 7, 8, 9, 10, 11]  # \n <|grounding|> Convert the document to markdown .
    assert inputs.input_ids[0].tolist() == [1] + [3] * inputs.image_tokens + text
    assert loaded.describe()["tokenizer"] == "checkpoint's own"


def test_checkpoint_eos_stops_generation(tmp_path, saved, page):
    _, directory = saved
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    _write_tokenizer(tmp_path)
    loaded = build_adapter(replace(SPEC, checkpoint=str(tmp_path)))
    _, free = _generate(loaded, page)
    # Make the first generated token the tokenizer's EOS: the loop must stop right there.
    with torch.no_grad():
        loaded.module.lm_head.weight[loaded.eos_token_id] = loaded.module.lm_head.weight[free[0]]
        loaded.module.lm_head.weight[loaded.eos_token_id] *= 2
    inputs = loaded.preprocess(page).to(loaded.device, loaded.dtype)
    instruments = Instruments(None, NvtxRanges(enabled=False))
    stopped = greedy_generate(loaded, inputs, NEW_TOKENS, instruments, loaded.eos_token_id)
    ignored = greedy_generate(loaded, inputs, NEW_TOKENS, instruments, None)
    assert stopped.tolist()[-1] == loaded.eos_token_id and len(stopped) < NEW_TOKENS
    assert len(ignored) == NEW_TOKENS

"""DeepSeek-OCR local checkpoints: both layouts, remote code, tokenizer, and clear errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.deepseek_ocr.checkpoint import (
    CheckpointError,
    HfPromptTokenizer,
    dims_from_config,
    read_dims,
    save_checkpoint,
    tensor_shapes,
)
from vlmprof.models.deepseek_ocr.dims import preset_dims
from vlmprof.models.deepseek_ocr.keymap import our_name, to_released
from vlmprof.models.deepseek_ocr.model import DeepseekOcrForProfiling
from vlmprof.models.deepseek_ocr.remote import DeepseekOcrRemoteAdapter
from vlmprof.models.prompt_tokenizer import stand_in_token_count
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.output_length import OutputLength
from vlmprof.runtime.stage_timer import StageTimer

SPEC = ModelSpec(preset="small", mode="tiny", seed=3)
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The small random model and the directory it was saved to."""
    adapter = build_adapter(SPEC)
    directory = save_checkpoint(
        adapter.module, adapter.dims, tmp_path_factory.mktemp("ckpt") / "deepseek-ocr"
    )
    return adapter, directory


@pytest.fixture(scope="module")
def page():
    return Image.new("RGB", (700, 900), (240, 240, 240))


def _generate(adapter, page) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = adapter.preprocess(page).to(adapter.device, adapter.dtype)
    with torch.inference_mode():
        logits, _ = adapter.prefill(inputs, 1)
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
    # Bit-identical weights; the CPU's matmul kernels may still round a few ulps apart when
    # the loaded tensors sit at other addresses (seen: 3.6e-7 on logits of order 1).
    torch.testing.assert_close(logits, loaded_logits, rtol=1e-6, atol=1e-6)
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


# The released checkpoint's config.json (deepseek-ai/DeepSeek-OCR), the parts we read.
RELEASED_CONFIG = {
    "architectures": ["DeepseekOCRForCausalLM"],
    "model_type": "deepseek_vl_v2",
    "language_config": {
        "first_k_dense_replace": 1,
        "hidden_size": 1280,
        "intermediate_size": 6848,
        "max_position_embeddings": 8192,
        "moe_intermediate_size": 896,
        "n_routed_experts": 64,
        "n_shared_experts": 2,
        "num_attention_heads": 10,
        "num_experts_per_tok": 6,
        "num_hidden_layers": 12,
        "num_key_value_heads": 10,
        "use_mla": False,
        "vocab_size": 129280,
    },
    "vision_config": {
        "width": {
            "clip-l-14-224": {"heads": 16, "layers": 24, "width": 1024},
            "sam_vit_b": {"heads": 12, "layers": 12, "width": 768},
        }
    },
}


def test_released_config_and_tensor_shapes_give_the_published_dims():
    with torch.device("meta"):
        full = DeepseekOcrForProfiling(preset_dims("full"))
    released = to_released(full.state_dict())
    # The released file: 2,710 tensors, one of them CLIP's unused pixel patch embedding.
    assert len(released) == 2709
    assert sum(t.numel() for t in released.values()) == 3_336_106_240 - 1024 * 3 * 14 * 14
    shapes = {our_name(name): tuple(t.shape) for name, t in released.items()}
    assert dims_from_config(RELEASED_CONFIG, shapes) == preset_dims("full")


def test_released_style_config_takes_vision_dims_from_the_tensors(saved):
    _, directory = saved
    config = json.loads((directory / "config.json").read_text())
    del config["vlmprof_dims"]
    shapes = tensor_shapes([directory / "model.safetensors"])
    assert dims_from_config(config, shapes) == preset_dims("small")
    # Without tensors to read, the vision encoder keeps the published dimensions.
    dims = dims_from_config(config, {})
    assert dims.decoder == preset_dims("small").decoder
    assert (dims.sam, dims.clip) == (preset_dims("full").sam, preset_dims("full").clip)


@pytest.fixture(scope="module")
def released_dir(saved, tmp_path_factory):
    """The small model saved under the released tensor names, plus CLIP's unused tensor."""
    adapter, _ = saved
    directory = save_checkpoint(
        adapter.module, adapter.dims, tmp_path_factory.mktemp("released") / "r", released=True
    )
    state = load_file(str(directory / "model.safetensors"))
    state["model.vision_model.embeddings.patch_embedding.weight"] = torch.zeros(128, 3, 14, 14)
    save_file(state, str(directory / "model.safetensors"))
    return directory


def test_released_layout_round_trip_gives_identical_logits_and_tokens(saved, released_dir, page):
    adapter, _ = saved
    keys = set(load_file(str(released_dir / "model.safetensors")))
    for name in (
        "model.sam_model.blocks.0.attn.qkv.weight",
        "model.sam_model.neck.3.bias",
        "model.sam_model.net_3.weight",
        "model.vision_model.transformer.layers.1.self_attn.qkv_proj.bias",
        "model.layers.2.mlp.experts.7.up_proj.weight",
        "model.projector.layers.weight",
    ):
        assert name in keys
    assert not any("gate_up_proj" in k or "sam_model.layers." in k for k in keys)
    assert "vlmprof_dims" not in json.loads((released_dir / "config.json").read_text())
    loaded = build_adapter(replace(SPEC, checkpoint=str(released_dir), seed=99))
    assert loaded.dims == adapter.dims
    logits, tokens = _generate(adapter, page)
    loaded_logits, loaded_tokens = _generate(loaded, page)
    assert torch.equal(logits, loaded_logits)
    assert torch.equal(tokens, loaded_tokens)


def test_released_tensors_keep_the_meaning_the_released_code_gives_them(saved):
    adapter, _ = saved
    ours = adapter.module.state_dict()
    released = to_released(ours)
    # A released expert computes down(silu(gate(x)) * up(x)); ours must compute the same.
    experts = adapter.module.model.layers[1].mlp.experts
    x = torch.randn(5, adapter.dims.decoder.hidden)
    name = "model.layers.1.mlp.experts.3.{}_proj.weight"
    gate, up, down = (released[name.format(part)] for part in ("gate", "up", "down"))
    expected = F.silu(x @ gate.T) * (x @ up.T) @ down.T
    weights = torch.ones(5, 1)
    index = torch.full((5, 1), 3)
    with torch.no_grad():
        assert torch.allclose(experts(x, index, weights), expected, atol=1e-6)
    # The released CLIP attention splits qkv_proj's rows into q, k, v in that order.
    qkv = released["model.vision_model.transformer.layers.0.self_attn.qkv_proj.weight"]
    prefix = "model.vision_model.transformer.layers.0.self_attn."
    assert torch.equal(qkv, torch.cat([ours[prefix + f"{p}_proj.weight"] for p in "qkv"]))
    assert torch.equal(
        released["model.sam_model.neck.1.weight"], ours["model.sam_model.neck.layer_norm1.weight"]
    )


def test_incomplete_released_experts_are_named(tmp_path, released_dir):
    state = load_file(str(released_dir / "model.safetensors"))
    del state["model.layers.1.mlp.experts.5.down_proj.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((released_dir / "config.json").read_text())
    with pytest.raises(CheckpointError) as error:
        build_adapter(replace(SPEC, checkpoint=str(tmp_path)))
    message = str(error.value)
    assert "\n" not in message and f"{tmp_path} (model.safetensors)" in message
    assert "2 missing keys ['model.layers.1.mlp.experts.down_proj'," in message
    assert "23 unexpected keys ['model.layers.1.mlp.experts.0.down_proj.weight'," in message


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


def test_unreadable_config_is_named(tmp_path, saved):
    _, directory = saved
    (tmp_path / "model.safetensors").write_bytes((directory / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=f"{tmp_path}/config.json is not valid JSON"):
        read_dims(tmp_path)


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


def test_a_pages_text_is_counted_by_the_checkpoints_tokenizer(tmp_path, saved):
    _, directory = saved
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    _write_tokenizer(tmp_path)
    loaded = build_adapter(replace(SPEC, checkpoint=str(tmp_path)))
    assert loaded.text_tokenizer == "model's own"
    # The word-level tokenizer takes "markdown-to-document" as one (unknown) word, where
    # the stand-in makes five pieces of it: the page's length is the real tokenizer's count
    # (Convert, the, markdown-to-document, page, ., newline) and its end-of-sequence.
    text = {"page": "Convert the markdown-to-document page.\n"}
    lengths = OutputLength("dataset").page_lengths(["page"], 32, text, loaded)
    assert lengths.tokens == {"page": 6 + 1}
    assert stand_in_token_count(text["page"]) == 10
    assert "through the model's own tokenizer" in lengths.source


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


# A tiny model shipped as remote code: the released module names (`model.sam_model`,
# `model.vision_model`, `model.projector`, `model.layers`, `lm_head`) and the released
# forward contract, with a running-mean "decoder" whose cache is the past embeddings.
TINY_MODELING = """
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

PATCH = 64


class TinyOcrConfig(PretrainedConfig):
    model_type = "tiny_ocr"

    def __init__(self, vocab_size=64, hidden_size=16, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        super().__init__(**kwargs)


class TinyOcrModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = config.hidden_size
        self.embed_tokens = nn.Embedding(config.vocab_size, width)
        self.sam_model = nn.Conv2d(3, width, kernel_size=PATCH, stride=PATCH)
        self.vision_model = nn.Linear(width, width)
        self.projector = nn.Linear(2 * width, width)
        self.image_newline = nn.Parameter(torch.randn(width))
        self.view_seperator = nn.Parameter(torch.randn(width))
        self.layers = nn.ModuleList([nn.Linear(width, width)])

    def encode(self, pixels):
        sam = self.sam_model(pixels).permute(0, 2, 3, 1)
        return self.projector(torch.cat([self.vision_model(sam), sam], dim=-1))

    def rows(self, grid):
        newline = self.image_newline.expand(grid.shape[0], 1, -1)
        return torch.cat([grid, newline], dim=1).flatten(0, 1)

    def image_features(self, crops, global_view, tiles):
        parts = []
        if crops.abs().sum() != 0:
            local = self.encode(crops)
            wide, high = int(tiles[0]), int(tiles[1])
            side, width = local.shape[1], local.shape[-1]
            local = local.reshape(high, wide, side, side, width).permute(0, 2, 1, 3, 4)
            parts.append(self.rows(local.reshape(high * side, wide * side, width)))
        parts.append(self.rows(self.encode(global_view)[0]))
        parts.append(self.view_seperator[None])
        return torch.cat(parts)


class TinyOcrForCausalLM(PreTrainedModel):
    config_class = TinyOcrConfig
    base_model_prefix = "model"

    def __init__(self, config):
        super().__init__(config)
        self.model = TinyOcrModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids, past_key_values=None, use_cache=None, images=None,
                images_seq_mask=None, images_spatial_crop=None, **kwargs):
        embeds = self.model.embed_tokens(input_ids)
        if images is not None and input_ids.shape[1] != 1:
            crops, global_view = images[0]
            features = self.model.image_features(crops, global_view, images_spatial_crop[0])
            embeds = embeds.masked_scatter(images_seq_mask.unsqueeze(-1), features)
        context = embeds if past_key_values is None else torch.cat([past_key_values, embeds], 1)
        counts = torch.arange(1, context.shape[1] + 1).view(1, -1, 1)
        means = (context.cumsum(1) / counts)[:, -input_ids.shape[1]:]
        hidden = torch.tanh(self.model.layers[0](means))
        return CausalLMOutputWithPast(logits=self.lm_head(hidden), past_key_values=context)
"""
TINY_CONFIG = {
    "architectures": ["TinyOcrForCausalLM"],
    "model_type": "tiny_ocr",
    "auto_map": {
        "AutoConfig": "modeling_tiny_ocr.TinyOcrConfig",
        "AutoModel": "modeling_tiny_ocr.TinyOcrForCausalLM",
    },
    "vocab_size": 64,
    "hidden_size": 16,
    "tie_word_embeddings": False,
    "language_config": {"vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 1},
}
REMOTE_SPEC = replace(SPEC, mode="gundam")


def _write_remote(directory, config=TINY_CONFIG) -> None:
    """The tiny remote-code model with seeded weights and the small tokenizer."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "modeling_tiny_ocr.py").write_text(TINY_MODELING)
    (directory / "config.json").write_text(json.dumps(config))
    loaded = AutoConfig.from_pretrained(
        str(directory), trust_remote_code=True, local_files_only=True
    )
    torch.manual_seed(0)
    model = AutoModel.from_config(loaded, trust_remote_code=True)
    save_file(model.state_dict(), str(directory / "model.safetensors"), metadata={"format": "pt"})
    _write_tokenizer(directory)


def _remote(directory, spec):
    """The adapter the registry builds for `directory` run by its own code."""
    return build_adapter(replace(spec, checkpoint=str(directory), trust_remote_code=True))


@pytest.fixture(scope="module")
def remote_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("remote") / "tiny"
    _write_remote(directory)
    return directory


def test_remote_code_runs_prefill_and_decode_with_stage_hooks(remote_dir, page):
    adapter = _remote(remote_dir, REMOTE_SPEC)
    assert isinstance(adapter, DeepseekOcrRemoteAdapter)
    assert adapter.image_token_id == 3 and adapter.eos_token_id == 2
    timer = StageTimer("cpu")
    instruments = Instruments(timer, NvtxRanges(enabled=False))
    handles = attach_stage_hooks(adapter.module, adapter.stage_modules(), instruments)
    inputs = adapter.preprocess(page)
    assert inputs.n_crops > 1
    tokens = greedy_generate(adapter, inputs, NEW_TOKENS, instruments)
    detach(handles)
    stages = timer.finish()
    # SAM, CLIP and the projector run once for the crops and once for the global view.
    assert [len(stages[label]) for label in ("sam", "clip", "projector")] == [2, 2, 2]
    assert len(stages["decode_step"]) == NEW_TOKENS - 1
    # Decoding with the returned cache equals one forward over the whole sequence.
    with torch.inference_mode():
        logits, state = adapter.prefill(inputs, NEW_TOKENS)
        stepped = [logits] + [adapter.decode_step(t.view(1, 1), state) for t in tokens[:-1]]
        whole = torch.cat([inputs.input_ids, tokens[None, :-1]], dim=1)
        full = adapter.module(
            input_ids=whole,
            images=[(inputs.pixel_views["crops"], inputs.pixel_views["global"])],
            images_seq_mask=whole == adapter.image_token_id,
            images_spatial_crop=torch.tensor([inputs.tiles]),
        ).logits[0, inputs.prefill_len - 1 :]
    assert torch.allclose(torch.cat(stepped), full, rtol=0, atol=1e-6)
    assert torch.equal(full.argmax(-1), tokens)
    assert adapter.describe()["model_code"] == "checkpoint's own (trust_remote_code)"


def test_remote_code_stops_at_the_tokenizers_eos(remote_dir, page):
    adapter = _remote(remote_dir, REMOTE_SPEC)
    inputs = adapter.preprocess(page)
    instruments = Instruments(None, NvtxRanges(enabled=False))
    free = greedy_generate(adapter, inputs, NEW_TOKENS, instruments)
    head = adapter.module.lm_head.weight
    with torch.no_grad():
        head[adapter.eos_token_id] = head[free[0]] * 2
    stopped = greedy_generate(adapter, inputs, NEW_TOKENS, instruments, adapter.eos_token_id)
    assert stopped.tolist() == [adapter.eos_token_id]


def test_remote_code_needs_its_code_in_the_directory(tmp_path, saved, remote_dir):
    _, directory = saved
    with pytest.raises(CheckpointError, match="has no auto_map.AutoModel"):
        _remote(directory, SPEC)
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((remote_dir / name).read_bytes())
    with pytest.raises(CheckpointError, match="has no modeling_tiny_ocr.py, which auto_map names"):
        _remote(tmp_path, SPEC)
    elsewhere = {**TINY_CONFIG, "auto_map": {"AutoModel": "org/repo--modeling.Model"}}
    (tmp_path / "config.json").write_text(json.dumps(elsewhere))
    with pytest.raises(CheckpointError, match="takes its code from another repository"):
        _remote(tmp_path, SPEC)


def test_remote_code_refuses_our_switches_and_a_missing_checkpoint(remote_dir):
    spec = replace(REMOTE_SPEC, checkpoint=str(remote_dir), trust_remote_code=True)
    assert isinstance(build_adapter(spec), DeepseekOcrRemoteAdapter)
    for switch in ({"decode": "static"}, {"compile": "decoder"}, {"perturb": 0.5}):
        with pytest.raises(ValueError, match="runs its own decode loop"):
            build_adapter(replace(spec, **switch))
    with pytest.raises(ValueError, match="needs model.checkpoint"):
        build_adapter(replace(spec, checkpoint=None))


def test_remote_code_weights_must_all_be_stored(tmp_path, remote_dir):
    for name in ("config.json", "modeling_tiny_ocr.py", "model.safetensors"):
        (tmp_path / name).write_bytes((remote_dir / name).read_bytes())
    state = load_file(str(tmp_path / "model.safetensors"))
    state["model.extra.weight"] = state.pop("model.projector.weight")
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError) as error:
        _remote(tmp_path, SPEC)
    message = str(error.value)
    assert "\n" not in message and "does not fit its own model code" in message
    assert "1 missing keys ['model.projector.weight']" in message
    assert "1 unexpected keys ['model.extra.weight']" in message

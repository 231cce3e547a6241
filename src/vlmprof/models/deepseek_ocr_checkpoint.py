"""DeepSeek-OCR weights in a local checkpoint directory: save and load, never from a hub.

A checkpoint directory holds `config.json` (in the released model's style: a
`language_config`, a `vision_config` and a `projector_config`, plus a `vlmprof_dims` block
that rebuilds our dimensions exactly), one or more `*.safetensors` files whose keys are our
module tree's names (`model.sam_model...`, `model.vision_model...`, `model.projector...`,
`model.layers.N...`, `lm_head.weight`), and optionally a Hugging Face tokenizer
(`tokenizer.json` or `tokenizer_config.json`). Loading builds the module tree on the meta
device and assigns the stored tensors, so no random weights are made first.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from vlmprof.atomic import write_json_atomic
from vlmprof.models.base import ModelSpec
from vlmprof.models.deepseek_ocr_dims import (
    ClipDims,
    DecoderDims,
    DeepseekOcrDims,
    SamDims,
    preset_dims,
)
from vlmprof.models.deepseek_ocr_model import DeepseekOcrForProfiling
from vlmprof.models.prompt_tokenizer import IMAGE_PLACEHOLDER, StandInTokenizer
from vlmprof.runtime.device import resolve_dtype

if TYPE_CHECKING:
    from vlmprof.models.deepseek_ocr import DeepseekOcrAdapter

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# The released tokenizer's special tokens (DeepSeek-V2 vocabulary).
HF_IMAGE_TOKEN = "<image>"
KEYS_SHOWN = 5


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, incomplete or does not fit the model."""


class HfPromptTokenizer:
    """A local Hugging Face tokenizer laid out like the reference prompt builder.

    BOS, the text before `<image>`, the image token repeated, then the text after, each text
    part encoded without special tokens (as the reference inference code does).
    """

    def __init__(self, directory: Path, vocab_size: int) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(HF_IMAGE_TOKEN)
        self.bos_id = self.tokenizer.bos_token_id
        self.eos_id = self.tokenizer.eos_token_id
        unknown = self.tokenizer.unk_token_id
        if self.image_token_id is None or self.image_token_id == unknown:
            raise CheckpointError(
                f"{directory}: tokenizer has no {HF_IMAGE_TOKEN} token; add it as a special token"
            )
        largest = max(i for i in (self.image_token_id, self.bos_id, self.eos_id) if i is not None)
        if largest >= vocab_size or len(self.tokenizer) > vocab_size:
            raise CheckpointError(
                f"{directory}: tokenizer has {len(self.tokenizer)} tokens but the model's "
                f"vocabulary is {vocab_size}; use the tokenizer saved with these weights"
            )

    def prompt_ids(self, prompt: str, image_tokens: int) -> list[int]:
        """Token ids of `prompt` with its image placeholder expanded to `image_tokens` ids."""
        if prompt.count(IMAGE_PLACEHOLDER) != 1:
            raise ValueError(f"prompt must contain {IMAGE_PLACEHOLDER} exactly once: {prompt!r}")
        before, after = prompt.split(IMAGE_PLACEHOLDER)
        ids = [] if self.bos_id is None else [self.bos_id]
        ids += self.tokenizer.encode(before, add_special_tokens=False)
        ids += [self.image_token_id] * image_tokens
        ids += self.tokenizer.encode(after, add_special_tokens=False)
        return ids


def checkpoint_config(dims: DeepseekOcrDims, dtype: torch.dtype) -> dict[str, Any]:
    """config.json content in the released checkpoint's style, plus `vlmprof_dims`."""
    dec, sam, clip = dims.decoder, dims.sam, dims.clip
    return {
        "architectures": ["DeepseekOCRForCausalLM"],
        "model_type": "deepseek_vl_v2",
        "torch_dtype": str(dtype).removeprefix("torch."),
        "language_config": {
            "model_type": "deepseek_v2",
            "vocab_size": dec.vocab,
            "hidden_size": dec.hidden,
            "num_hidden_layers": dec.layers,
            "num_attention_heads": dec.heads,
            "num_key_value_heads": dec.kv_heads,
            "head_dim": dec.head_dim,
            "intermediate_size": dec.dense_intermediate,
            "first_k_dense_replace": dec.first_k_dense,
            "moe_intermediate_size": dec.moe_intermediate,
            "n_routed_experts": dec.routed_experts,
            "num_experts_per_tok": dec.experts_per_token,
            "n_shared_experts": dec.shared_experts,
            "max_position_embeddings": dec.max_positions,
            "use_mla": False,
            "topk_method": "greedy",
            "n_group": 1,
            "topk_group": 1,
        },
        "vision_config": {
            "model_name": "deepencoder",
            "width": {
                "sam_vit_b": {
                    "width": sam.width,
                    "layers": sam.depth,
                    "heads": sam.heads,
                    "global_attn_indexes": list(sam.global_blocks),
                    "downsample_channels": list(sam.compressor_channels),
                },
                "clip-l-14-224": {
                    "width": clip.width,
                    "layers": clip.depth,
                    "heads": clip.heads,
                },
            },
        },
        "projector_config": {
            "projector_type": "linear",
            "input_dim": dims.projector_in,
            "n_embed": dims.projector_out,
        },
        "vlmprof_dims": dims.to_dict(),
    }


def _part(cls: type, values: dict[str, Any]) -> Any:
    """One dims part from a JSON dict (lists back to tuples)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def dims_from_config(config: dict[str, Any]) -> DeepseekOcrDims:
    """Dimensions from a config.json: exact from `vlmprof_dims`, else from `language_config`.

    Without `vlmprof_dims` (a released checkpoint) the decoder comes from its DeepSeek-V2
    `language_config` and the vision encoder keeps the published (`full`) dimensions.
    """
    if "vlmprof_dims" in config:
        parts = config["vlmprof_dims"]
        return DeepseekOcrDims(
            sam=_part(SamDims, parts["sam"]),
            clip=_part(ClipDims, parts["clip"]),
            decoder=_part(DecoderDims, parts["decoder"]),
        )
    lang = config.get("language_config", config)
    full = preset_dims("full")
    names = {
        "vocab": "vocab_size",
        "hidden": "hidden_size",
        "layers": "num_hidden_layers",
        "heads": "num_attention_heads",
        "kv_heads": "num_key_value_heads",
        "head_dim": "head_dim",
        "dense_intermediate": "intermediate_size",
        "first_k_dense": "first_k_dense_replace",
        "moe_intermediate": "moe_intermediate_size",
        "routed_experts": "n_routed_experts",
        "experts_per_token": "num_experts_per_tok",
        "shared_experts": "n_shared_experts",
        "max_positions": "max_position_embeddings",
    }
    found = {ours: lang[theirs] for ours, theirs in names.items() if theirs in lang}
    return dataclasses.replace(full, decoder=dataclasses.replace(full.decoder, **found))


def _check_directory(directory: Path) -> list[Path]:
    """The weight files of a complete checkpoint directory; a one-line error otherwise."""
    if not directory.is_dir():
        raise CheckpointError(
            f"model.checkpoint: {directory} is not a directory; point it at a local snapshot "
            "with config.json and *.safetensors"
        )
    if not (directory / CONFIG_FILE).is_file():
        raise CheckpointError(f"model.checkpoint: {directory} has no {CONFIG_FILE}")
    weights = sorted(directory.glob("*.safetensors"))
    if not weights:
        raise CheckpointError(f"model.checkpoint: {directory} has no *.safetensors weight file")
    return weights


def read_dims(directory: str | Path) -> DeepseekOcrDims:
    """Dimensions of the checkpoint in `directory` (for static analysis without weights)."""
    directory = Path(directory)
    _check_directory(directory)
    return dims_from_config(json.loads((directory / CONFIG_FILE).read_text()))


def load_weights(
    module: DeepseekOcrForProfiling,
    directory: Path,
    device: torch.device | str,
    dtype: torch.dtype,
) -> None:
    """Assign the directory's tensors to `module` (built on meta); every key must match."""
    state: dict[str, torch.Tensor] = {}
    for path in _check_directory(directory):
        state.update(load_file(str(path), device=str(device)))
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"model.checkpoint: {directory} does not fit model.name deepseek_ocr: "
            f"{len(missing)} missing keys {missing[:KEYS_SHOWN]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:KEYS_SHOWN]}"
        )
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        first = str(error).splitlines()[1:2] or [str(error)]
        raise CheckpointError(
            f"model.checkpoint: {directory} has tensors of the wrong shape: {first[0].strip()}"
        ) from None
    # Non-persistent buffers (rotary frequencies) are not stored: compute them on `device`.
    with torch.device(device):
        module.model.rotary_emb = type(module.model.rotary_emb)(module.model.config)


def checkpoint_tokenizer(directory: Path, vocab_size: int) -> HfPromptTokenizer | StandInTokenizer:
    """The directory's own tokenizer where it has one, else the stand-in."""
    if any((directory / name).is_file() for name in TOKENIZER_FILES):
        return HfPromptTokenizer(directory, vocab_size)
    return StandInTokenizer(vocab_size)


def load_checkpoint(directory: str | Path, spec: ModelSpec) -> DeepseekOcrAdapter:
    """The adapter with the checkpoint's dimensions, weights and (if present) tokenizer."""
    from vlmprof.models.deepseek_ocr import DeepseekOcrAdapter  # it imports this module

    directory = Path(directory)
    dims = read_dims(directory)
    dtype = resolve_dtype(spec.dtype, spec.device)
    with torch.device("meta"):
        module = DeepseekOcrForProfiling(
            dims, spec.attn_implementation, spec.experts_implementation
        )
    load_weights(module, directory, spec.device, dtype)
    tokenizer = checkpoint_tokenizer(directory, dims.decoder.vocab)
    return DeepseekOcrAdapter(spec, dims, module.eval(), tokenizer)


def save_checkpoint(adapter: DeepseekOcrAdapter, directory: str | Path) -> Path:
    """Write the adapter's weights (`model.safetensors`) and `config.json` to `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in adapter.module.state_dict().items()}
    partial = directory / f".{WEIGHTS_FILE}.partial"
    save_file(state, str(partial), metadata={"format": "pt"})
    partial.replace(directory / WEIGHTS_FILE)
    write_json_atomic(directory / CONFIG_FILE, checkpoint_config(adapter.dims, adapter.dtype))
    return directory

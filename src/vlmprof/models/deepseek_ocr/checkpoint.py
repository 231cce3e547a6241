"""DeepSeek-OCR weights in a local checkpoint directory: save and load, never from a hub.

A checkpoint directory holds `config.json` (in the released model's style: a
`language_config`, a `vision_config` and a `projector_config`; ours add a `vlmprof_dims`
block that rebuilds our dimensions exactly), one or more `*.safetensors` files, and
optionally a Hugging Face tokenizer (`tokenizer.json` or `tokenizer_config.json`).

The tensors may carry our module tree's names or the released checkpoint's
(`deepseek-ai/DeepSeek-OCR`); `keymap` maps the released ones (renames, CLIP's
fused q/k/v, per-expert matrices) onto ours. Without `vlmprof_dims` the decoder's dimensions
come from `language_config` and the vision encoder's from the stored tensor shapes. Loading
builds the module tree on the meta device and assigns the stored tensors, so no random
weights are made first. With `trust_remote_code` the directory's own model code runs
instead of our module tree (`remote`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from vlmprof.atomic import write_json_atomic
from vlmprof.device import resolve_dtype
from vlmprof.models.base import ModelParts, ModelSpec
from vlmprof.models.deepseek_ocr.dims import (
    ClipDims,
    DecoderDims,
    DeepseekOcrDims,
    SamDims,
    preset_dims,
)
from vlmprof.models.deepseek_ocr.keymap import from_released, our_name, to_released
from vlmprof.models.deepseek_ocr.model import DeepseekOcrForProfiling
from vlmprof.models.prompt_tokenizer import IMAGE_PLACEHOLDER, StandInTokenizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# The released tokenizer's special tokens (DeepSeek-V2 vocabulary).
HF_IMAGE_TOKEN = "<image>"
KEYS_SHOWN = 5
SAM = "model.sam_model."
CLIP = "model.vision_model."


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

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without special tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

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


def _numbered(shapes: Mapping[str, tuple[int, ...]], prefix: str) -> list[int]:
    """The block numbers N of the tensors named `prefix` + `N.` + anything."""
    return sorted({int(n[len(prefix) :].split(".")[0]) for n in shapes if n.startswith(prefix)})


def sam_dims(shapes: Mapping[str, tuple[int, ...]], fallback: SamDims) -> SamDims:
    """SAM's dimensions as the stored tensor shapes show them (`fallback` if they cannot).

    The head count is the width over the relative-position tables' head dim; a block whose
    table spans the whole patch grid (2 * grid - 1 rows) attends globally, the others'
    tables span their window.
    """
    names = {
        "pos": SAM + "pos_embed",
        "patch": SAM + "patch_embed.projection.weight",
        "rel": SAM + "layers.0.attn.rel_pos_h",
        "mlp": SAM + "layers.0.mlp.lin1.weight",
        "neck": SAM + "neck.conv1.weight",
        "down1": SAM + "proj.conv1.weight",
        "down2": SAM + "proj.conv2.weight",
    }
    if any(name not in shapes for name in names.values()):
        return fallback
    shape = {key: shapes[name] for key, name in names.items()}
    blocks = _numbered(shapes, SAM + "layers.")
    grid, width, patch = shape["pos"][1], shape["pos"][3], shape["patch"][2]
    spans = {i: shapes.get(f"{SAM}layers.{i}.attn.rel_pos_h", (0,))[0] for i in blocks}
    windows = [span for span in spans.values() if span != 2 * grid - 1]
    return SamDims(
        width=width,
        depth=len(blocks),
        heads=width // shape["rel"][1],
        mlp_dim=shape["mlp"][0],
        window=(windows[0] + 1) // 2 if windows else fallback.window,
        global_blocks=tuple(i for i, span in spans.items() if span == 2 * grid - 1),
        patch=patch,
        pretrain_size=grid * patch,
        neck_channels=shape["neck"][0],
        compressor_channels=(shape["down1"][0], shape["down2"][0]),
    )


def clip_dims(shapes: Mapping[str, tuple[int, ...]], heads: int, fallback: ClipDims) -> ClipDims:
    """CLIP's dimensions as the stored tensor shapes show them (`fallback` if they cannot).

    No shape shows the head count, so it comes from the config (`heads`).
    """
    names = (
        CLIP + "embeddings.class_embedding",
        CLIP + "embeddings.position_embedding.weight",
        CLIP + "transformer.layers.0.mlp.fc1.weight",
    )
    if any(name not in shapes for name in names):
        return fallback
    width, positions, ffn = (shapes[name][0] for name in names)
    return ClipDims(
        width=width,
        depth=len(_numbered(shapes, CLIP + "transformer.layers.")),
        heads=heads,
        ffn=ffn,
        pos_grid=math.isqrt(positions - 1),
    )


def dims_from_config(
    config: dict[str, Any], shapes: Mapping[str, tuple[int, ...]]
) -> DeepseekOcrDims:
    """Dimensions from config.json and the stored tensor shapes (by our names).

    Exact from `vlmprof_dims` where present; otherwise (a released checkpoint) the decoder
    from its DeepSeek-V2 `language_config`, the vision encoder from the tensor shapes, and
    anything neither shows keeps the published (`full`) value.
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
    widths = config.get("vision_config", {}).get("width", {})
    clip_heads = widths.get("clip-l-14-224", {}).get("heads", full.clip.heads)
    return DeepseekOcrDims(
        sam=sam_dims(shapes, full.sam),
        clip=clip_dims(shapes, clip_heads, full.clip),
        decoder=dataclasses.replace(full.decoder, **found),
    )


def check_directory(directory: Path) -> list[Path]:
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


def read_config(directory: Path) -> dict[str, Any]:
    """config.json as a dict; a one-line error when it is not a JSON object."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"model.checkpoint: {directory}/{CONFIG_FILE} is not valid JSON: {error}"
        ) from None
    if not isinstance(config, dict):
        raise CheckpointError(f"model.checkpoint: {directory}/{CONFIG_FILE} is not a JSON object")
    return config


def tensor_shapes(weights: list[Path]) -> dict[str, tuple[int, ...]]:
    """Every stored tensor's shape under our name, read from the safetensors headers only."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in weights:
        with safe_open(str(path), framework="pt") as handle:
            for name in list(handle.keys()):
                shapes[our_name(name)] = tuple(handle.get_slice(name).get_shape())
    return shapes


def read_dims(directory: str | Path) -> DeepseekOcrDims:
    """Dimensions of the checkpoint in `directory` (for static analysis without weights)."""
    directory = Path(directory)
    weights = check_directory(directory)
    config = read_config(directory)
    try:
        return dims_from_config(config, tensor_shapes(weights))
    except (TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(
            f"model.checkpoint: {directory}/{CONFIG_FILE} does not describe a DeepSeek-OCR "
            f"model: {error}"
        ) from None


def _files(weights: list[Path]) -> str:
    """The weight files, named for an error message."""
    return weights[0].name if len(weights) == 1 else f"{len(weights)} *.safetensors files"


def load_weights(
    module: DeepseekOcrForProfiling,
    directory: Path,
    device: torch.device | str,
    dtype: torch.dtype,
) -> None:
    """Assign the directory's tensors to `module` (built on meta); every key must match.

    Released tensor names are mapped to ours first; what still does not match is named.
    """
    weights = check_directory(directory)
    state: dict[str, torch.Tensor] = {}
    for path in weights:
        state.update(load_file(str(path), device=str(device)))
    state = from_released(state)
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"model.checkpoint: {directory} ({_files(weights)}) does not fit model.name "
            f"deepseek_ocr: {len(missing)} missing keys {missing[:KEYS_SHOWN]}, "
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


def load_checkpoint(
    directory: str | Path, spec: ModelSpec
) -> ModelParts[DeepseekOcrDims, DeepseekOcrForProfiling]:
    """The checkpoint's dimensions, weights in our module tree and (if present) tokenizer.

    The module is built on the meta device and takes the stored tensors, on `spec.device`
    in `spec.dtype`; the attention and experts implementations are the spec's.
    """
    directory = Path(directory)
    dims = read_dims(directory)
    dtype = resolve_dtype(spec.dtype, spec.device)
    tokenizer = checkpoint_tokenizer(directory, dims.decoder.vocab)
    with torch.device("meta"):
        module = DeepseekOcrForProfiling(
            dims, spec.attn_implementation, spec.experts_implementation
        )
    load_weights(module, directory, spec.device, dtype)
    return ModelParts(dims, module.eval(), tokenizer)


def save_checkpoint(
    module: DeepseekOcrForProfiling,
    dims: DeepseekOcrDims,
    directory: str | Path,
    released: bool = False,
) -> Path:
    """Write the module's weights (`model.safetensors`) and `config.json` to `directory`.

    `released` writes the released checkpoint's tensor names and a config.json without our
    `vlmprof_dims` block, as the released model ships them (its dimensions then come from
    the tensor shapes on loading).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    config = checkpoint_config(dims, next(module.parameters()).dtype)
    if released:
        state = to_released(state)
        del config["vlmprof_dims"]
    partial = directory / f".{WEIGHTS_FILE}.partial"
    save_file(state, str(partial), metadata={"format": "pt"})
    partial.replace(directory / WEIGHTS_FILE)
    write_json_atomic(directory / CONFIG_FILE, config)
    return directory

"""DeepSeek-OCR run through the model code shipped inside its checkpoint directory.

A Hugging Face snapshot whose config.json has an `auto_map` carries its own modeling files;
transformers loads them with `trust_remote_code=True`. We load them from the directory only
(`local_files_only`, no hub), keep the module tree as it is, so the stage hooks attach to
`model.sam_model`, `model.vision_model` and `model.projector` by name, and drive the model
through the released forward contract:
`forward(input_ids, images=[(crops, global_view)], images_seq_mask, images_spatial_crop,
past_key_values, use_cache)` with an all-zero crop tensor meaning "no crops",
`images_spatial_crop` as (width tiles, height tiles), and vision skipped for one-token steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel

from vlmprof.device import resolve_dtype
from vlmprof.models.base import MODULE_TREE_SWITCHES, DecodeState, ModelInputs, ModelSpec
from vlmprof.models.deepseek_ocr.adapter import STAGE_MODULES, DeepseekOcrAdapter
from vlmprof.models.deepseek_ocr.checkpoint import (
    CONFIG_FILE,
    CheckpointError,
    checkpoint_tokenizer,
    read_dims,
)
from vlmprof.models.implementation import upcast

MODEL_CLASS_KEY = "AutoModel"


def remote_code_file(directory: Path) -> Path:
    """The modeling file that config.json's `auto_map` names; a one-line error otherwise."""
    auto_map = json.loads((directory / CONFIG_FILE).read_text()).get("auto_map") or {}
    reference = auto_map.get(MODEL_CLASS_KEY)
    if not reference:
        raise CheckpointError(
            f"model.checkpoint: {directory}/{CONFIG_FILE} has no auto_map.{MODEL_CLASS_KEY}; "
            "trust_remote_code needs the model's own code in the directory"
        )
    if "--" in reference:
        raise CheckpointError(
            f"model.checkpoint: {directory}/{CONFIG_FILE} takes its code from another "
            f"repository ({reference}); copy that code into the directory (no network at run time)"
        )
    source = directory / (reference.rpartition(".")[0].replace(".", "/") + ".py")
    if not source.is_file():
        raise CheckpointError(
            f"model.checkpoint: {directory} has no {source.name}, which auto_map names"
        )
    return source


def load_remote_model(directory: Path, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """The directory's own model class with its own weights, on `device` in `dtype`.

    Every parameter must come from the checkpoint: a missing one would be random, so it is
    an error, and so is a stored tensor the model does not use. The stage modules must exist.
    """
    remote_code_file(directory)
    try:
        module, info = AutoModel.from_pretrained(
            str(directory),
            trust_remote_code=True,
            local_files_only=True,
            dtype=dtype,
            output_loading_info=True,
        )
    except (ImportError, OSError, ValueError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"model.checkpoint: {directory}: its own model code did not load: {first}"
        ) from None
    parameters = dict(module.named_parameters())
    missing = sorted(k for k in info["missing_keys"] if k in parameters)
    unexpected = sorted(info["unexpected_keys"])
    if missing or unexpected:
        raise CheckpointError(
            f"model.checkpoint: {directory} does not fit its own model code: "
            f"{len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    names = dict(module.named_modules())
    absent = [path for path in STAGE_MODULES if path not in names]
    if absent:
        raise CheckpointError(
            f"model.checkpoint: {directory}: its own model code has no module {absent[0]}, "
            "so the vision stages cannot be timed"
        )
    return module.to(device).eval()


class DeepseekOcrRemoteAdapter(DeepseekOcrAdapter):
    """The adapter with the checkpoint's own model code in place of our module tree.

    Preprocessing, tokenizer, stage names and dimensions are the parent's; prefill and
    decode call the model's own forward, whose KV cache is whatever that code returns.
    The registry builds this class for `deepseek_ocr` with `trust_remote_code`.
    """

    @classmethod
    def build(cls, spec: ModelSpec) -> DeepseekOcrRemoteAdapter:
        """Our dimensions and tokenizer of `spec.checkpoint`, run by the directory's own code."""
        changed = [k for k, v in MODULE_TREE_SWITCHES.items() if getattr(spec, k) != v]
        if changed:
            raise ValueError(
                "model.trust_remote_code: the checkpoint's own code runs its own decode loop;"
                f" {', '.join(changed)} switches apply to our module tree only"
            )
        if not spec.checkpoint:
            raise ValueError(
                "model.trust_remote_code: needs model.checkpoint, the local directory whose "
                "own model code runs"
            )
        directory = Path(spec.checkpoint)
        dims = read_dims(directory)
        dtype = resolve_dtype(spec.dtype, spec.device)
        tokenizer = checkpoint_tokenizer(directory, dims.decoder.vocab)
        module = load_remote_model(directory, spec.device, dtype)
        return cls(spec, dims, upcast(module, spec.upcast), tokenizer)  # type: ignore[arg-type]

    def prefill(self, inputs: ModelInputs, new_tokens: int) -> tuple[torch.Tensor, DecodeState]:
        """Vision, prompt embedding and decoder in one call of the model's own forward (its
        own cache grows, whatever `new_tokens`)."""
        global_view = inputs.pixel_views["global"]
        crops = inputs.pixel_views.get("crops")
        output = self.module(
            input_ids=inputs.input_ids,
            images=[(torch.zeros_like(global_view) if crops is None else crops, global_view)],
            images_seq_mask=inputs.input_ids == self.image_token_id,
            images_spatial_crop=torch.tensor([inputs.tiles], dtype=torch.long),
            use_cache=True,
        )
        state = DecodeState(cache=output.past_key_values, position=inputs.prefill_len)
        return output.logits[:, -1, :], state

    def decode_step(self, token: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """One token through the model's own forward with the cache it returned."""
        output = self.module(input_ids=token, past_key_values=state.cache, use_cache=True)
        state.cache = output.past_key_values
        state.position += 1
        return output.logits[:, -1, :]

    def describe(self) -> dict[str, Any]:
        """The parent's description plus which code runs the model."""
        return {**super().describe(), "model_code": "checkpoint's own (trust_remote_code)"}

"""DeepSeek-OCR-2 weights in a local directory of transformers' format; never from a hub.

A checkpoint directory is what `save_pretrained` of transformers'
`DeepseekOcr2ForConditionalGeneration` writes (`config.json` with model_type
`deepseek_ocr2`, `*.safetensors`), optionally with a Hugging Face tokenizer. Its
dimensions come from its config, its weights must match the module tree key for key.
"""

from __future__ import annotations

from pathlib import Path

from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2Config
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2ForConditionalGeneration,
)

from vlmprof.device import resolve_dtype
from vlmprof.models.base import ModelParts, ModelSpec
from vlmprof.models.deepseek_ocr.checkpoint import (
    CONFIG_FILE,
    KEYS_SHOWN,
    CheckpointError,
    check_directory,
    checkpoint_tokenizer,
    read_config,
)
from vlmprof.models.deepseek_ocr.dims import DecoderDims, SamDims
from vlmprof.models.deepseek_ocr2.dims import DeepseekOcr2Dims, EncoderDims

MODEL_TYPE = "deepseek_ocr2"


def _first_k_dense(layer_types: list[str]) -> int:
    """Leading dense layers of a decoder whose other layers are all MoE."""
    dense = next((i for i, kind in enumerate(layer_types) if kind != "dense"), len(layer_types))
    if any(kind != "sparse" for kind in layer_types[dense:]):
        raise CheckpointError(
            f"model.checkpoint: mlp_layer_types {layer_types} is not dense layers followed "
            "by MoE layers, which the FLOP model assumes"
        )
    return dense


def dims_from_config(config: DeepseekOcr2Config) -> DeepseekOcr2Dims:
    """Our dimensions of a transformers DeepSeek-OCR-2 config."""
    sam = config.vision_config.sam_config
    enc = config.vision_config.encoder_config
    text = config.text_config
    return DeepseekOcr2Dims(
        sam=SamDims(
            width=sam.hidden_size,
            depth=sam.num_hidden_layers,
            heads=sam.num_attention_heads,
            mlp_dim=sam.mlp_dim,
            window=sam.window_size,
            global_blocks=tuple(sam.global_attn_indexes),
            patch=sam.patch_size,
            pretrain_size=sam.image_size,
            neck_channels=sam.output_channels,
            compressor_channels=tuple(sam.downsample_channels),
        ),
        encoder=EncoderDims(
            width=enc.hidden_size,
            depth=enc.num_hidden_layers,
            heads=enc.num_attention_heads,
            kv_heads=enc.num_key_value_heads,
            ffn=enc.intermediate_size,
        ),
        decoder=DecoderDims(
            vocab=text.vocab_size,
            hidden=text.hidden_size,
            layers=text.num_hidden_layers,
            heads=text.num_attention_heads,
            kv_heads=text.num_key_value_heads,
            head_dim=text.head_dim,
            dense_intermediate=text.intermediate_size,
            first_k_dense=_first_k_dense(list(text.mlp_layer_types)),
            moe_intermediate=text.moe_intermediate_size,
            routed_experts=text.n_routed_experts,
            experts_per_token=text.num_experts_per_tok,
            shared_experts=text.n_shared_experts,
            max_positions=text.max_position_embeddings,
        ),
    )


def _config(directory: Path) -> DeepseekOcr2Config:
    """The directory's config, or a one-line error saying what is missing or wrong."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"model.checkpoint: {directory} has no {CONFIG_FILE}; point it at a local "
            "transformers-format DeepSeek-OCR-2 directory"
        )
    model_type = read_config(directory).get("model_type")
    if model_type != MODEL_TYPE:
        raise CheckpointError(
            f"model.checkpoint: {path} has model_type {model_type!r}, not {MODEL_TYPE!r}; "
            "model.name deepseek_ocr2 reads transformers' format (convert the weights first)"
        )
    return DeepseekOcr2Config.from_pretrained(str(directory), local_files_only=True)


def read_dims(directory: str | Path) -> DeepseekOcr2Dims:
    """Dimensions of the checkpoint in `directory` (for static analysis without weights)."""
    return dims_from_config(_config(Path(directory)))


def load_checkpoint(
    directory: str | Path, spec: ModelSpec
) -> ModelParts[DeepseekOcr2Dims, DeepseekOcr2ForConditionalGeneration]:
    """The checkpoint's dimensions, model on `spec.device` and (if present) tokenizer."""
    directory = Path(directory)
    dims = dims_from_config(_config(directory))
    check_directory(directory)
    module, info = DeepseekOcr2ForConditionalGeneration.from_pretrained(
        str(directory),
        local_files_only=True,
        dtype=resolve_dtype(spec.dtype, spec.device),
        attn_implementation=spec.attn_implementation,
        experts_implementation=spec.experts_implementation,
        output_loading_info=True,
    )
    missing, unexpected = sorted(info["missing_keys"]), sorted(info["unexpected_keys"])
    mismatched = sorted(str(key) for key in info["mismatched_keys"])
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"model.checkpoint: {directory} does not fit model.name deepseek_ocr2: "
            f"{len(missing)} missing keys {missing[:KEYS_SHOWN]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:KEYS_SHOWN]}, "
            f"{len(mismatched)} of the wrong shape {mismatched[:KEYS_SHOWN]}"
        )
    tokenizer = checkpoint_tokenizer(directory, dims.decoder.vocab)
    return ModelParts(dims, module.to(spec.device).eval(), tokenizer)


def save_checkpoint(module: DeepseekOcr2ForConditionalGeneration, directory: str | Path) -> Path:
    """Write the module's weights and config to `directory` in transformers' format."""
    directory = Path(directory)
    module.save_pretrained(str(directory))
    return directory

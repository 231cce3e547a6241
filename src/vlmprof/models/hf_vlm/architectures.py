"""The transformers vision-language architectures `hf_vlm` builds, one table row each.

A row names the transformers classes (by attribute name, so reading the table imports
neither torch nor transformers: the workflow checks presets while planning), the module
paths of the vision stages, the decoder layers, and two presets of config values: `small`
(a tiny model for CPU tests) and `full` (a published checkpoint's dimensions; the sources
of each value are in docs/models/hf_vlm.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PRESETS = ("small", "full")
# Config sections an override may set key by key; any other key replaces a top-level value.
SUB_CONFIGS = ("text_config", "vision_config")
# The small presets' decoder, shared by every architecture: two narrow layers and a vocab
# small enough for fast CPU runs (image token ids sit at its top, from 4000).
SMALL_TEXT: Mapping[str, Any] = {
    "vocab_size": 4096,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}


@dataclass(frozen=True)
class Architecture:
    """One transformers VLM: its classes, stage modules and presets."""

    name: str
    # Attribute names in `transformers`: the config, the ...ForConditionalGeneration model
    # and the image processor (the PIL one: it needs no torchvision).
    config_class: str
    model_class: str
    image_processor_class: str
    # Module paths whose forwards together are the vision encoder without its projector; a
    # ModuleList path stands for each of its layers.
    vision: tuple[str, ...]
    # The merger or multi-modal projector from vision features to the decoder width: its
    # module paths in the order they run (the last one gives the image tokens' embeddings).
    projector: tuple[str, ...]
    # The decoder layers' ModuleList (what `compile: decoder` wraps, layer by layer).
    decoder_layers: str
    # Preset -> config values (`text_config` and `vision_config` as dicts).
    presets: Mapping[str, Mapping[str, Any]]
    # Preset -> image processor settings (what the processor class takes at construction).
    processor: Mapping[str, Mapping[str, Any]]
    # The vision config key whose value is the square tile the processor cuts (an encoder
    # of fixed input size; a side or a [height, width] pair); None where the processor keeps
    # the page's aspect.
    tile_size_key: str | None = None
    # The one attention the vision tower has in transformers, if it has only one; the
    # decoder still takes `model.attn_implementation`.
    vision_attention: str | None = None
    # Config keys of the token ids around the run of image tokens (None: none in the config).
    image_bounds: tuple[str, str] | None = None
    # Whether the processor writes tokenizer tokens around the run that the config does not
    # name (GOT-OCR2's and QianfanOCR's <img> and </img>): the stand-in prompt puts text ids
    # in their place.
    stand_in_bounds: bool = False
    # Whether the forward takes `mm_token_type_ids` (text 0, image 1), as Qwen's 3D rope does.
    token_types: bool = False


QWEN2_5_VL = Architecture(
    name="qwen2_5_vl",
    config_class="Qwen2_5_VLConfig",
    model_class="Qwen2_5_VLForConditionalGeneration",
    # Qwen2.5-VL checkpoints use the Qwen2-VL image processor.
    image_processor_class="Qwen2VLImageProcessorPil",
    # The patch embedding and the blocks; the window reordering and rope between them
    # count as glue (LLM prefill), as glue between stages does for every model.
    vision=("model.visual.patch_embed", "model.visual.blocks"),
    projector=("model.visual.merger",),
    decoder_layers="model.language_model.layers",
    presets={
        "small": {
            "text_config": {
                **SMALL_TEXT,
                # mrope_section splits head_dim / 2 (16 here) into time, height, width.
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 1000000.0,
                    "mrope_section": [4, 6, 6],
                },
                # The published ids lie outside the small vocab; the stand-in prompt has none.
                "bos_token_id": None,
                "eos_token_id": None,
            },
            "vision_config": {
                "depth": 2,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_heads": 2,
                "out_hidden_size": 128,
                "fullatt_block_indexes": [1],
            },
            "image_token_id": 4000,
            "video_token_id": 4001,
            "vision_start_token_id": 4002,
            "vision_end_token_id": 4003,
        },
        # Qwen/Qwen2.5-VL-3B-Instruct's config.json (not in transformers, whose defaults are
        # other sizes): values as quoted by copies of that file, unconfirmed offline.
        "full": {
            "text_config": {
                "vocab_size": 151936,
                "hidden_size": 2048,
                "intermediate_size": 11008,
                "num_hidden_layers": 36,
                "num_attention_heads": 16,
                "num_key_value_heads": 2,
                "max_position_embeddings": 128000,
                "rms_norm_eps": 1e-6,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 1000000.0,
                    "mrope_section": [16, 24, 24],
                },
                "tie_word_embeddings": True,
            },
            "vision_config": {
                "depth": 32,
                "hidden_size": 1280,
                "intermediate_size": 3420,
                "num_heads": 16,
                "out_hidden_size": 2048,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "window_size": 112,
                "fullatt_block_indexes": [7, 15, 23, 31],
                "tokens_per_second": 2,
            },
            "tie_word_embeddings": True,
        },
    },
    processor={
        # At most 64 merged tokens (256 patches of 14 px) per page keeps CPU runs fast; an
        # A4 page at 150 dpi would otherwise give about 2,800 image tokens.
        "small": {"size": {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64}},
        # The processor's own defaults (min 56*56, max 28*28*1280 pixels).
        "full": {},
    },
    image_bounds=("vision_start_token_id", "vision_end_token_id"),
    token_types=True,
)

GOT_OCR2 = Architecture(
    name="got_ocr2",
    config_class="GotOcr2Config",
    model_class="GotOcr2ForConditionalGeneration",
    image_processor_class="GotOcr2ImageProcessorPil",
    # The SAM-style encoder with its neck.
    vision=("model.vision_tower",),
    projector=("model.multi_modal_projector",),
    decoder_layers="model.language_model.layers",
    presets={
        "small": {
            "text_config": {
                **SMALL_TEXT,
            },
            # 256 px tiles of 16 px patches: 16 x 16 features, 4 x 4 tokens after the
            # projector's two stride-2 convolutions.
            "vision_config": {
                "hidden_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "mlp_dim": 128,
                "output_channels": 32,
                "image_size": 256,
                "window_size": 4,
                "global_attn_indexes": [1],
            },
            "image_token_index": 4000,
        },
        # transformers' GotOcr2Config defaults, which are stepfun-ai/GOT-OCR-2.0 as converted
        # (a Qwen2 decoder of 24 layers, width 1024; a SAM ViT-B encoder at 1024 px).
        "full": {},
    },
    processor={
        # GOT's multi-crop mode, so that a page's tile count follows its size; fewer tiles
        # (and 256 px ones, from the vision config) keep CPU runs fast.
        "small": {"crop_to_patches": True, "max_patches": 6},
        # The processor's default of 12 tiles at most.
        "full": {"crop_to_patches": True},
    },
    tile_size_key="image_size",
    # transformers' GOT-OCR2 vision tower supports eager attention only.
    vision_attention="eager",
    # The processor's conversation writes <img> and </img> around the run.
    stand_in_bounds=True,
)

LIGHTON_OCR = Architecture(
    name="lighton_ocr",
    config_class="LightOnOcrConfig",
    model_class="LightOnOcrForConditionalGeneration",
    image_processor_class="PixtralImageProcessorPil",
    # The Pixtral encoder; the projector (RMSNorm, 2x2 patch merger, MLP) is its sibling.
    vision=("model.vision_encoder",),
    projector=("model.vision_projection",),
    decoder_layers="model.language_model.layers",
    presets={
        "small": {
            # Qwen3's head_dim defaults to 128 whatever the width; 32 keeps it narrow.
            "text_config": {**SMALL_TEXT, "head_dim": 32},
            # image_size bounds the encoder's 2D rope: at least the processor's longest edge.
            "vision_config": {
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "hidden_act": "silu",
                "patch_size": 14,
                "image_size": 224,
            },
            "image_token_id": 4000,
        },
        # lightonai/LightOnOCR-1B-1025's config.json as quoted by a third-party copy; a
        # dict sub-config replaces transformers' defaults rather than merging with them.
        "full": {
            "text_config": {
                "vocab_size": 151936,
                "hidden_size": 1024,
                "intermediate_size": 3072,
                "num_hidden_layers": 28,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "max_position_embeddings": 8192,
                "rms_norm_eps": 1e-6,
                "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
                "tie_word_embeddings": True,
            },
            "vision_config": {
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "hidden_act": "silu",
                "patch_size": 14,
                "image_size": 1540,
                "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
            },
            "spatial_merge_size": 2,
            "image_token_id": 151655,
            "tie_word_embeddings": True,
        },
    },
    processor={
        # A page's longest edge at 224 px: at most 8 x 8 merged tokens of 28 px.
        "small": {"patch_size": 14, "size": {"longest_edge": 224}},
        # The checkpoint's preprocessor_config.json (Pixtral's own defaults are 16 / 1024).
        "full": {"patch_size": 14, "size": {"longest_edge": 1540}},
    },
)

PADDLEOCR_VL = Architecture(
    name="paddleocr_vl",
    config_class="PaddleOCRVLConfig",
    model_class="PaddleOCRVLForConditionalGeneration",
    image_processor_class="PaddleOCRVLImageProcessorPil",
    # The NaViT-style encoder (embeddings, blocks, post-norm); the projector is its sibling.
    vision=("model.visual",),
    projector=("model.projector",),
    decoder_layers="model.language_model.layers",
    presets={
        "small": {
            "text_config": {
                **SMALL_TEXT,
                # The config's head_dim defaults to 128 whatever the width; mrope_section
                # splits head_dim / 2 (16 here) into time, height, width.
                "head_dim": 32,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 500000.0,
                    "mrope_section": [4, 6, 6],
                },
                # ERNIE's ids 1 and 2 lie inside the small vocab: random weights emitting
                # eos would end the model's own generate early, unlike our loop.
                "bos_token_id": None,
                "eos_token_id": None,
            },
            # image_size sets the learned position grid (4 x 4 here), resampled to each page.
            "vision_config": {
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 56,
            },
            "image_token_id": 4000,
            "video_token_id": 4001,
            "vision_start_token_id": 4002,
            "vision_end_token_id": 4003,
        },
        # PaddlePaddle/PaddleOCR-VL: transformers' PaddleOCRVLConfig defaults (written for
        # that checkpoint) and third-party copies of its config.json; untied embeddings
        # and the video id are unconfirmed (docs/models/hf_vlm.md).
        "full": {
            "text_config": {
                "vocab_size": 103424,
                "hidden_size": 1024,
                "intermediate_size": 3072,
                "num_hidden_layers": 18,
                "num_attention_heads": 16,
                "num_key_value_heads": 2,
                "head_dim": 128,
                "max_position_embeddings": 131072,
                "rms_norm_eps": 1e-5,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 500000.0,
                    "mrope_section": [16, 24, 24],
                },
                # Also here: a tied text config would re-tie the model (transformers' BC).
                "tie_word_embeddings": False,
            },
            "vision_config": {
                "hidden_size": 1152,
                "intermediate_size": 4304,
                "num_hidden_layers": 27,
                "num_attention_heads": 16,
                "image_size": 384,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "hidden_act": "gelu_pytorch_tanh",
                "layer_norm_eps": 1e-6,
            },
            "image_token_id": 100295,
            "video_token_id": 101307,
            "vision_start_token_id": 101305,
            "vision_end_token_id": 101306,
            "tie_word_embeddings": False,
        },
    },
    processor={
        # At most 64 merged tokens per page, as qwen2_5_vl's small preset.
        "small": {"size": {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64}},
        # The checkpoint's preprocessor_config.json, which differs from the class defaults
        # (CLIP mean and std, 384*384 to 1536*1536 pixels).
        "full": {
            "size": {"shortest_edge": 147384, "longest_edge": 2822400},
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5],
        },
    },
    image_bounds=("vision_start_token_id", "vision_end_token_id"),
    token_types=True,
)

GLM_OCR = Architecture(
    name="glm_ocr",
    config_class="GlmOcrConfig",
    model_class="GlmOcrForConditionalGeneration",
    # GLM-OCR checkpoints name the GLM-4.6V image processor (Qwen2-VL-style dynamic resolution).
    image_processor_class="Glm46VImageProcessorPil",
    # The CogViT patch embedding, blocks and final norm; the merge to one token per 2x2
    # patches is the projector's (a strided convolution, then the gated MLP merger), as it
    # is for the other rows. The 2D rope tables between them count as glue (LLM prefill).
    vision=("model.visual.patch_embed", "model.visual.blocks", "model.visual.post_layernorm"),
    projector=("model.visual.downsample", "model.visual.merger"),
    decoder_layers="model.language_model.layers",
    presets={
        "small": {
            "text_config": {
                **SMALL_TEXT,
                # mrope_section splits head_dim / 2 (16 here) into time, height, width.
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 10000.0,
                    "mrope_section": [4, 6, 6],
                },
            },
            # out_hidden_size is the decoder width the merger projects to.
            "vision_config": {
                "depth": 2,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_heads": 2,
                "out_hidden_size": 128,
            },
            "image_token_id": 4000,
            "video_token_id": 4001,
            "image_start_token_id": 4002,
            "image_end_token_id": 4003,
            "video_start_token_id": 4004,
            "video_end_token_id": 4005,
        },
        # zai-org/GLM-OCR's config.json as quoted by a third-party copy (docs/models/hf_vlm.md):
        # a wider decoder than transformers' GlmOcrConfig defaults (hidden 1536, not 1024).
        "full": {
            "text_config": {
                "vocab_size": 59392,
                "hidden_size": 1536,
                "intermediate_size": 4608,
                "num_hidden_layers": 16,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "max_position_embeddings": 131072,
                "rms_norm_eps": 1e-5,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 10000.0,
                    "mrope_section": [16, 24, 24],
                    "partial_rotary_factor": 1.0,
                },
                "pad_token_id": 59246,
                "eos_token_id": [59246, 59253],
                "tie_word_embeddings": False,
            },
            "vision_config": {
                "depth": 24,
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_heads": 16,
                "image_size": 336,
                "patch_size": 14,
                "out_hidden_size": 1536,
                "rms_norm_eps": 1e-5,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
            },
            "image_token_id": 59280,
            "video_token_id": 59281,
            "image_start_token_id": 59256,
            "image_end_token_id": 59257,
            "video_start_token_id": 59258,
            "video_end_token_id": 59259,
            "tie_word_embeddings": False,
        },
    },
    processor={
        # At most 64 merged tokens per page, as qwen2_5_vl's small preset.
        "small": {"size": {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64}},
        # The checkpoint's preprocessor_config.json (the class defaults are 112*112 to
        # 28*28*15000 pixels; mean, std, patch and merge sizes are the class's).
        "full": {"size": {"shortest_edge": 12544, "longest_edge": 9633792}},
    },
    image_bounds=("image_start_token_id", "image_end_token_id"),
    token_types=True,
)

HUNYUAN_VL = Architecture(
    name="hunyuan_vl",
    config_class="HunYuanVLConfig",
    model_class="HunYuanVLForConditionalGeneration",
    image_processor_class="HunYuanVLImageProcessorPil",
    # The SigLIP-style encoder (embeddings with learned positions resampled to the page,
    # blocks); the patch merger (2x2 convolution, MLP, a newline per row, begin and end
    # embeddings) is its child, so the encoder is hooked by its parts.
    vision=("model.vision_tower.embeddings", "model.vision_tower.layers"),
    projector=("model.vision_tower.patch_merger",),
    decoder_layers="model.language_model.layers",
    presets={
        "small": {
            "text_config": {
                **SMALL_TEXT,
                # The full model's rope (fixed NTK alpha, four axes: sequence, width, height,
                # image index), its sections splitting head_dim / 2 (16 here).
                "head_dim": 32,
                "rope_parameters": {
                    "rope_type": "dynamic",
                    "rope_theta": 10000.0,
                    "alpha": 1000.0,
                    "factor": 1.0,
                    "mrope_section": [4, 4, 4, 4],
                },
                # HunYuan's ids 1 and 2 lie inside the small vocab: random weights emitting
                # eos would end the model's own generate early, unlike our loop.
                "bos_token_id": None,
                "eos_token_id": None,
            },
            # max_image_size sets the learned position grid (16 x 16 patches of 16 px here).
            "vision_config": {
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "max_image_size": 256,
            },
            "image_token_id": 4000,
            "im_start_id": 4001,
            "im_end_id": 4002,
            "im_newline_id": 4003,
        },
        # tencent/HunyuanOCR as huggingface/candle's and mlx-vlm's ports give it
        # (docs/models/hf_vlm.md); transformers' HunYuanVLTextConfig defaults are a 7B decoder.
        "full": {
            "text_config": {
                "vocab_size": 120818,
                "hidden_size": 1024,
                "intermediate_size": 3584,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "max_position_embeddings": 32768,
                "rms_norm_eps": 1e-5,
                "rope_parameters": {
                    "rope_type": "dynamic",
                    "rope_theta": 10000.0,
                    "alpha": 1000.0,
                    "factor": 1.0,
                    "mrope_section": [16, 16, 16, 16],
                },
                "bos_token_id": 120000,
                "eos_token_id": 120020,
                "tie_word_embeddings": True,
            },
            "vision_config": {
                "hidden_size": 1152,
                "intermediate_size": 4304,
                "num_hidden_layers": 27,
                "num_attention_heads": 16,
                "patch_size": 16,
                "spatial_merge_size": 2,
                "max_image_size": 2048,
                "hidden_act": "gelu",
                "rms_norm_eps": 1e-5,
            },
            "image_token_id": 120120,
            "im_start_id": 120118,
            "im_end_id": 120119,
            "im_newline_id": 120121,
            "tie_word_embeddings": True,
        },
    },
    processor={
        # At most 64 merged patches of 32 px per page (about 72 tokens with the row ends).
        "small": {"size": {"shortest_edge": 64 * 64, "longest_edge": 32 * 32 * 64}},
        # The processor's defaults (512*512 to 2048*2048 pixels, CLIP mean and std).
        "full": {},
    },
    image_bounds=("im_start_id", "im_end_id"),
    token_types=True,
)

QIANFAN_OCR = Architecture(
    name="qianfan_ocr",
    config_class="QianfanOCRConfig",
    model_class="QianfanOCRForConditionalGeneration",
    # The checkpoint's processor class: InternVL-style tiles (GOT-OCR2's cropping).
    image_processor_class="GotOcr2ImageProcessorPil",
    # The InternViT-style encoder; the 2x2 pixel shuffle between it and the projector is a
    # reshape (glue), the projector an MLP from the shuffled features to the decoder width.
    vision=("model.vision_tower",),
    projector=("model.multi_modal_projector",),
    decoder_layers="model.language_model.layers",
    presets={
        "small": {
            # Qwen3's head_dim defaults to 128 whatever the width; 32 keeps it narrow.
            "text_config": {**SMALL_TEXT, "head_dim": 32},
            # 112 px tiles of 14 px patches: 8 x 8 features, 4 x 4 tokens after the shuffle.
            "vision_config": {
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 112,
            },
            "image_token_id": 4000,
            # What the processor lays out per tile (the model makes the grid's 16 tokens).
            "image_seq_length": 16,
        },
        # baidu/Qianfan-OCR: the model card's dimensions (a Qwen3-4B decoder, a 24-layer
        # encoder at 448 px) with Qwen3-4B's and transformers' QianfanOCR defaults for the
        # rest; no copy of the checkpoint's config.json was found (docs/models/hf_vlm.md).
        "full": {
            "text_config": {
                "vocab_size": 151936,
                "hidden_size": 2560,
                "intermediate_size": 9728,
                "num_hidden_layers": 36,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "max_position_embeddings": 32768,
                "rms_norm_eps": 1e-6,
                "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
                "tie_word_embeddings": False,
            },
            "vision_config": {
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "image_size": 448,
                "patch_size": 14,
            },
            "image_token_id": 151667,
            "image_seq_length": 256,
            "downsample_ratio": 0.5,
            "tie_word_embeddings": False,
        },
    },
    processor={
        # Multi-crop mode, as the checkpoint's processor runs it, with fewer tiles.
        "small": {"crop_to_patches": True, "max_patches": 6},
        # The processor class's 12 tiles at most (the checkpoint's own setting is unconfirmed).
        "full": {"crop_to_patches": True},
    },
    tile_size_key="image_size",
    # The processor writes its tokenizer's <img> and </img> around the run.
    stand_in_bounds=True,
)

GRANITE_DOCLING = Architecture(
    name="granite_docling",
    config_class="GraniteDoclingConfig",
    model_class="GraniteDoclingForConditionalGeneration",
    image_processor_class="GraniteDoclingImageProcessorPil",
    # The SigLIP2-style encoder over each tile (its layers run one by one, not through the
    # encoder's own forward); the connector (pixel shuffle, projection, MLP and the DeepStack
    # mergers of three inner layers' features) is its child, so it is hooked by its parts.
    vision=(
        "model.vision_model.embeddings",
        "model.vision_model.encoder.layers",
        "model.vision_model.post_layernorm",
    ),
    projector=("model.vision_model.connector",),
    decoder_layers="model.text_model.layers",
    presets={
        "small": {
            # Granite's ids (pad 100256, bos and eos 100257) lie outside the small vocab.
            "text_config": {
                **SMALL_TEXT,
                "pad_token_id": None,
                "bos_token_id": None,
                "eos_token_id": None,
            },
            # 128 px tiles of 16 px patches: 8 x 8 features, 2 x 2 tokens after the coarse
            # connector's shuffle by 4; DeepStack features of both layers go to the decoder.
            "vision_config": {
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 128,
                "out_hidden_size": 128,
                "deepstack_visual_indexes": [0, 1],
            },
            "image_token_id": 4000,
            "pad_token_id": None,
        },
        # transformers' GraniteDoclingConfig defaults, written for
        # ibm-granite/granite-for-docling-500m (docs/models/hf_vlm.md).
        "full": {},
    },
    processor={
        # Multi-tile mode with fewer tiles (and 128 px ones, from the vision config).
        "small": {"max_patches": 6},
        # The processor's defaults: 512 px tiles, 32 at most, the coarse route.
        "full": {},
    },
    tile_size_key="image_size",
)

ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        QWEN2_5_VL,
        GOT_OCR2,
        LIGHTON_OCR,
        PADDLEOCR_VL,
        GLM_OCR,
        HUNYUAN_VL,
        QIANFAN_OCR,
        GRANITE_DOCLING,
    )
}


def architecture(name: str) -> Architecture:
    """The table row of `name`, or a ValueError naming the config key and the known ones."""
    if name not in ARCHITECTURES:
        raise ValueError(
            f"model.architecture: unknown architecture {name!r}; "
            f"allowed: {', '.join(ARCHITECTURES)}"
        )
    return ARCHITECTURES[name]


def check_preset(preset: str, overrides: Mapping[str, Any]) -> None:
    """Raise a ValueError naming the key when `preset` or an override section is malformed
    (whether each key is a config key is left to transformers, at build)."""
    if preset not in PRESETS:
        raise ValueError(
            f"model.preset: unknown preset {preset!r} for hf_vlm; allowed: {', '.join(PRESETS)}"
        )
    for section in SUB_CONFIGS:
        if not isinstance(overrides.get(section, {}), Mapping):
            raise ValueError(f"model.overrides.{section}: must be a mapping of config keys")


def config_values(arch: Architecture, preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The preset's config values with `overrides` applied (sub-configs merged key by key)."""
    check_preset(preset, overrides)
    values = {**arch.presets[preset], **overrides}
    for section in SUB_CONFIGS:
        merged = {**arch.presets[preset].get(section, {}), **overrides.get(section, {})}
        if merged:
            values[section] = merged
    return values

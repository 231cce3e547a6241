"""Model adapters by name; adding a model is one subpackage (or module) and one line here.

Adapters are imported when built, so importing a model's dimensions or view geometry
(`vlmprof.models.deepseek_ocr.dims`, `.views`; the report does) never pays for transformers.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from vlmprof.models.base import ModelAdapter, ModelSpec

ADAPTERS: dict[str, str] = {
    "deepseek_ocr": "vlmprof.models.deepseek_ocr.adapter:DeepseekOcrAdapter",
    "deepseek_ocr2": "vlmprof.models.deepseek_ocr2.adapter:DeepseekOcr2Adapter",
    "causal_lm": "vlmprof.models.causal_lm:CausalLmAdapter",
}

# Where each pipeline model's dimension presets live (no transformers import needed).
DIMS: dict[str, str] = {
    "deepseek_ocr": "vlmprof.models.deepseek_ocr.dims",
    "deepseek_ocr2": "vlmprof.models.deepseek_ocr2.dims",
}
# Where each pipeline model reads a checkpoint's dimensions (`read_dims`; needs transformers).
CHECKPOINT_DIMS: dict[str, str] = {
    "deepseek_ocr": "vlmprof.models.deepseek_ocr.checkpoint",
    "deepseek_ocr2": "vlmprof.models.deepseek_ocr2.checkpoint",
}


def adapter_class(name: str) -> type[ModelAdapter]:
    """The adapter class registered as `name`."""
    if name not in ADAPTERS:
        raise ValueError(f"model.name: unknown model {name!r}; allowed: {', '.join(ADAPTERS)}")
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def _dims_module(name: str) -> Any:
    """The dims module of pipeline model `name`, or a ValueError listing the known ones."""
    if name not in DIMS:
        raise ValueError(f"model.name: {name!r} has no dimensions; allowed: {', '.join(DIMS)}")
    return importlib.import_module(DIMS[name])


def check_preset(name: str, preset: str, overrides: Mapping[str, Any]) -> None:
    """Raise a ValueError naming the key when `preset` plus `overrides` is not a valid model."""
    _dims_module(name).preset_dims(preset, dict(overrides))


def spec_dims(name: str, preset: str, overrides: Mapping[str, Any], checkpoint: str | None) -> Any:
    """Dimensions of the model a run builds: the checkpoint's if given, else the preset's.

    A checkpoint's reader is imported only then: it needs transformers, a preset does not.
    """
    dims = _dims_module(name)
    if checkpoint:
        return importlib.import_module(CHECKPOINT_DIMS[name]).read_dims(checkpoint)
    return dims.preset_dims(preset, dict(overrides))


def build_adapter(spec: ModelSpec) -> ModelAdapter:
    """Build the adapter named by `spec.name`."""
    return adapter_class(spec.name).build(spec)

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
    "hf_vlm": "vlmprof.models.hf_vlm.adapter:HfVlmAdapter",
}
# Adapters that run a checkpoint's own model code (`model.trust_remote_code`), by model name.
REMOTE_CODE_ADAPTERS: dict[str, str] = {
    "deepseek_ocr": "vlmprof.models.deepseek_ocr.remote:DeepseekOcrRemoteAdapter",
}

# Where each pipeline model's dimension presets live (no transformers import needed).
DIMS: dict[str, str] = {
    "deepseek_ocr": "vlmprof.models.deepseek_ocr.dims",
    "deepseek_ocr2": "vlmprof.models.deepseek_ocr2.dims",
}
# Models whose presets are transformers config values per architecture (no dims module):
# where their `check_preset(preset, overrides)` lives (no transformers import needed).
PRESET_CHECKS: dict[str, str] = {
    "hf_vlm": "vlmprof.models.hf_vlm.architectures",
}
# Where each model that cuts a page into views by resolution mode keeps its modes (`MODES`;
# pure geometry, no torch); the others take the page whole and ignore `mode`.
VIEWS: dict[str, str] = {
    "deepseek_ocr": "vlmprof.models.deepseek_ocr.views",
    "deepseek_ocr2": "vlmprof.models.deepseek_ocr2.views",
}
# Where each pipeline model reads a checkpoint's dimensions (`read_dims`; needs transformers).
CHECKPOINT_DIMS: dict[str, str] = {
    "deepseek_ocr": "vlmprof.models.deepseek_ocr.checkpoint",
    "deepseek_ocr2": "vlmprof.models.deepseek_ocr2.checkpoint",
}


def adapter_class(name: str, remote_code: bool = False) -> type[ModelAdapter]:
    """The adapter class registered as `name` (with `remote_code`, its remote-code one).

    A model without a remote-code adapter loads every checkpoint with its own classes.
    The class is imported here, by name, so that importing the registry (the workflow's
    planning and the report do) does not import transformers.
    """
    if name not in ADAPTERS:
        raise ValueError(f"model.name: unknown model {name!r}; allowed: {', '.join(ADAPTERS)}")
    path = REMOTE_CODE_ADAPTERS.get(name, ADAPTERS[name]) if remote_code else ADAPTERS[name]
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)


def _dims_module(name: str) -> Any:
    """The dims module of pipeline model `name`, or a ValueError listing the known ones."""
    if name not in DIMS:
        raise ValueError(f"model.name: {name!r} has no dimensions; allowed: {', '.join(DIMS)}")
    return importlib.import_module(DIMS[name])


def has_formulas(name: str) -> bool:
    """Whether model `name` has analytic FLOP and byte formulas (its dims module); the work
    of any other model is counted over its own runs (flops/page_work.py)."""
    return name in DIMS


def check_preset(name: str, preset: str, overrides: Mapping[str, Any]) -> None:
    """Raise a ValueError naming the key when `preset` plus `overrides` is not a valid model."""
    if name in PRESET_CHECKS:
        importlib.import_module(PRESET_CHECKS[name]).check_preset(preset, overrides)
        return
    _dims_module(name).preset_dims(preset, dict(overrides))


def resolution_modes(name: str) -> tuple[str, ...] | None:
    """The resolution modes model `name` knows, or None where it ignores `mode`."""
    if name not in VIEWS:
        return None
    return tuple(importlib.import_module(VIEWS[name]).MODES)


def spec_dims(name: str, preset: str, overrides: Mapping[str, Any], checkpoint: str | None) -> Any:
    """Dimensions of the model a run builds: the checkpoint's if given, else the preset's.

    A checkpoint's reader is imported only then: it needs transformers, a preset does not.
    """
    dims = _dims_module(name)
    if checkpoint:
        return importlib.import_module(CHECKPOINT_DIMS[name]).read_dims(checkpoint)
    return dims.preset_dims(preset, dict(overrides))


def build_adapter(spec: ModelSpec) -> ModelAdapter:
    """Build the adapter named by `spec.name` (the remote-code one with `trust_remote_code`)."""
    return adapter_class(spec.name, spec.trust_remote_code).build(spec)

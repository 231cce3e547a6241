"""Model adapters by name; adding a model is one module and one line here.

Adapters are imported when built, so importing `vlmprof.models.<module>` for dimensions
or view geometry (the report does) never pays for transformers.
"""

from __future__ import annotations

import importlib

from vlmprof.models.base import ModelAdapter, ModelSpec

ADAPTERS: dict[str, str] = {
    "deepseek_ocr": "vlmprof.models.deepseek_ocr:DeepseekOcrAdapter",
    "causal_lm": "vlmprof.models.causal_lm:CausalLmAdapter",
}


def adapter_class(name: str) -> type[ModelAdapter]:
    """The adapter class registered as `name`."""
    if name not in ADAPTERS:
        raise ValueError(f"model.name: unknown model {name!r}; allowed: {', '.join(ADAPTERS)}")
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_adapter(spec: ModelSpec) -> ModelAdapter:
    """Build the adapter named by `spec.name`."""
    return adapter_class(spec.name).build(spec)

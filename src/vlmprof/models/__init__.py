"""Model adapters by name; adding a model is one module and one line here."""

from __future__ import annotations

from vlmprof.models.base import ModelAdapter, ModelSpec
from vlmprof.models.causal_lm import CausalLmAdapter
from vlmprof.models.deepseek_ocr import DeepseekOcrAdapter

ADAPTERS: dict[str, type[ModelAdapter]] = {
    DeepseekOcrAdapter.name: DeepseekOcrAdapter,
    CausalLmAdapter.name: CausalLmAdapter,
}


def build_adapter(spec: ModelSpec) -> ModelAdapter:
    """Build the adapter named by `spec.name`."""
    if spec.name not in ADAPTERS:
        raise ValueError(f"model.name: unknown model {spec.name!r}; allowed: {', '.join(ADAPTERS)}")
    return ADAPTERS[spec.name].build(spec)

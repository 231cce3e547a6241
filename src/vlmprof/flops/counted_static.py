"""The static compute report of a model without FLOP formulas: its parameters by part, from
its module tree; its FLOPs and bytes are counted per page by the timing pass
(flops/page_work.py), at each page's own shapes."""

from __future__ import annotations

from typing import Any

from torch import nn

from vlmprof.flops.analytic import bytes_per_element
from vlmprof.models.base import ModelAdapter

CONVENTIONS = (
    "FLOPs = 2 x multiply-accumulates: a (m x k) by (k x n) matmul is 2*m*k*n FLOPs.",
    "This model has no analytic formulas: each page's FLOPs and bytes are counted over one "
    "untimed run of it (its prefill and two decode steps) by FlopCounterMode and a byte "
    "counter at PyTorch's dispatcher, and every record carries them (counted_work).",
    "Only matmul-class work is counted (linear, convolution, attention matmuls, the attention "
    "core whatever its kernel); softmax, norms, activations, RoPE and residual adds are not.",
    "Bytes are the matmul-class ops' tensors read and written: weights once per call, "
    "activations, and the KV cache attention reads.",
    "A decode step's work grows by the same amount with every cached position: the two "
    "counted steps give every later one.",
    "The vision encoder takes the `clip` stage and its projector or merger the `projector` "
    "stage; this model has no SAM.",
)


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def part_params(adapter: ModelAdapter) -> dict[str, int]:
    """Parameters by part: each vision stage's modules, the decoder (everything else), what
    one token's decode step reads of it (all but the embedding, one row of which it reads;
    a tied lm_head reads the whole matrix) and the total."""
    module = adapter.module
    counts: dict[str, int] = {}
    for path, stage in adapter.stage_modules().items():
        counts[stage] = counts.get(stage, 0) + _numel(module.get_submodule(path))
    total = _numel(module)
    decoder = total - sum(counts.values())
    embedding = module.get_input_embeddings().weight
    tied = module.get_output_embeddings().weight is embedding
    rows, width = embedding.shape
    counts["decoder_total"] = decoder
    counts["decoder_active_per_token"] = decoder - (0 if tied else rows * width) + width
    counts["total"] = total
    return counts


def counted_static_compute(adapter: ModelAdapter, dtype: str) -> dict[str, Any]:
    """static_compute.json of a model without formulas: its parameters by part; no stage is
    costed here (`stages` is empty), as the timing pass counts each page's work."""
    return {
        "model": adapter.describe(),
        "dtype": dtype,
        "bytes_per_element": bytes_per_element(dtype),
        "prefill_len": None,
        "decode_context": None,
        "params": part_params(adapter),
        "flops": {},
        "stages": {},
        "fvcore_unsupported_ops": {},
        "conventions": list(CONVENTIONS),
    }

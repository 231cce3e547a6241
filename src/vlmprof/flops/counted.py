"""FLOPs counted on the real modules: torch's FlopCounterMode and fvcore's FlopCountAnalysis.

Both counters see only matmul-class ops, as the analytic formulas do. The gaps of the stock
counters are handled here rather than hidden:
- FlopCounterMode has no formula for the CPU SDPA kernel
  (`aten._scaled_dot_product_flash_attention_for_cpu`) and would count CPU attention as 0;
  nor for the grouped matmul of grouped experts (`aten._grouped_mm`): each is given one.
- torch's formula for the fused SDPA kernels counts the full q x k square even when they
  are called with `is_causal`, although they skip the masked tiles. Every SDPA kernel is
  given one formula that counts the pairs it computes: each query against the keys up to
  itself when causal (n(n+1)/2 in a prefill), every pair otherwise, as the analytic
  formulas do. Attention that computes the square and masks it afterwards (eager
  attention, SDPA's math path on the meta device) is counted as its matmuls: the square.
- fvcore counts one multiply-add as one flop: its totals are multiplied by 2 here. It cannot
  see inside `aten::scaled_dot_product_attention` and reports it as unsupported, with any
  other op it skips; those names are returned so a gap can be explained.

DeepSeek-OCR-2's vision (SAM, the Qwen2 encoder in the `clip` slot, the projector) and
decoder are transformers' modules under other paths; the probes below find either layout.
The decoder is counted piece by piece (one dense layer, one MoE layer, the lm_head) and the
pieces scaled by the layer counts, so the 3B-parameter model is never materialised whole.
Pieces of a model built on the meta device are materialised one at a time on the CPU.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers.cache_utils import DynamicCache

from vlmprof.flops.analytic import ModelDims
from vlmprof.models.base import ModelAdapter
from vlmprof.models.deepseek_ocr.views import tokens_per_side
from vlmprof.models.deepseek_ocr2.dims import DeepseekOcr2Dims

with warnings.catch_warnings():
    # fvcore scripts its loss functions at import, which torch now reports as deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis

aten = torch.ops.aten
MATERIALISE_STD = 0.02
DECODER_SCALING_NOTE = (
    "decoder counts are scaled from one dense layer, one MoE layer and the lm_head: "
    "first_k_dense x dense + (layers - first_k_dense) x MoE + lm_head on one position"
)


def sdpa_pairs(q_len: int, k_len: int, is_causal: bool) -> int:
    """(query, key) pairs an SDPA kernel computes: all of them, or with `is_causal` (whose
    mask torch aligns to the top left) query i against keys 0..i."""
    if not is_causal:
        return q_len * k_len
    inside = min(q_len, k_len)
    return inside * (inside + 1) // 2 + (q_len - inside) * k_len


def _sdpa_formula(kernel: Any) -> Callable[..., int]:
    """The FLOP formula of one SDPA kernel: scores and weighted sum over the pairs it
    computes (`sdpa_pairs`, reading its `is_causal` argument), by its query heads, so also
    where fewer key and value heads serve them (grouped-query attention, which torch's own
    formula refuses)."""
    names = [argument.name for argument in kernel.default._schema.arguments]
    causal_at = names.index("is_causal") - 3  # after query, key and value

    def flops(
        query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any
    ) -> int:
        is_causal = args[causal_at] if len(args) > causal_at else kwargs.get("is_causal", False)
        batch, heads, q_len, head_dim = query_shape
        pairs = sdpa_pairs(q_len, key_shape[2], bool(is_causal))
        return 2 * batch * heads * pairs * (head_dim + value_shape[3])

    return flops


def _grouped_mm_flops(a_shape: Any, b_shape: Any, *args: Any, **kwargs: Any) -> int:
    """torch's grouped matmul (the grouped experts): every row of `a` meets one group's
    matrix, so 2 x rows x inner x columns whatever the offsets split (3D operands: per
    group)."""
    groups = a_shape[0] if len(a_shape) == 3 else 1
    rows, inner = a_shape[-2], a_shape[-1]
    return 2 * groups * rows * inner * b_shape[-1]


# Formulas FlopCounterMode lacks or gets wrong: the CPU SDPA kernel and the grouped matmul
# would count 0, and torch's formula for the CUDA SDPA kernels counts causal attention as
# the full square and fails on grouped-query attention (its key and value have fewer heads
# than its query).
SDPA_KERNELS = (
    aten._scaled_dot_product_flash_attention_for_cpu,
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_cudnn_attention,
)
COUNTER_FORMULAS: dict[Any, Any] = {
    **{kernel: _sdpa_formula(kernel) for kernel in SDPA_KERNELS},
    aten._grouped_mm: _grouped_mm_flops,
}


def count_flopcountermode(module: Callable[..., Any], *args: Any) -> tuple[float, dict[str, float]]:
    """Total FLOPs and FLOPs per aten op of `module(*args)` (any callable) under FlopCounterMode.

    Works on the meta device too (SDPA then decomposes into counted matmuls over the full
    square, as its math path computes them).
    """
    counter = FlopCounterMode(display=False, custom_mapping=COUNTER_FORMULAS)
    with torch.no_grad(), counter:
        module(*args)
    per_op = {str(op): float(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return float(counter.get_total_flops()), per_op


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence fvcore's and the JIT tracer's warnings while counting."""
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def count_fvcore(
    module: nn.Module, inputs: tuple[Any, ...]
) -> tuple[float, dict[str, float], dict[str, int]]:
    """fvcore FLOPs (its multiply-adds x 2), FLOPs per op, and unsupported ops with counts.

    Needs real tensors: fvcore traces the module with the JIT tracer.
    """
    with _quiet(), torch.no_grad():
        analysis = (
            FlopCountAnalysis(module, inputs)
            .unsupported_ops_warnings(False)
            .uncalled_modules_warnings(False)
            .tracer_warnings("none")
        )
        total = 2.0 * analysis.total()
        per_op = {op: 2.0 * n for op, n in analysis.by_operator().items()}
        unsupported = dict(sorted(analysis.unsupported_ops().items()))
    return total, per_op, unsupported


class TensorOutput(nn.Module):
    """Returns a module's main tensor (`last_hidden_state` of a ModelOutput) so it traces."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = module

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """Call the wrapped module and unwrap its output."""
        out = self.inner(*args)
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out


class EncoderProbe(nn.Module):
    """DeepSeek-OCR-2's visual encoder over (1, 2n, width): n SAM tokens, then n queries."""

    def __init__(self, encoder: nn.Module, num_patches: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.num_patches = num_patches

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The encoder's output at every position."""
        return self.encoder(inputs_embeds=tokens, num_patches=self.num_patches).last_hidden_state


class DecoderLayerProbe(nn.Module):
    """One decoder layer fed (1, q, hidden) new tokens after `past_key.shape[2]` cached ones.

    Attention sees no mask, as in the model: causal SDPA in prefill (counted as the kernel
    computes it, `sdpa_pairs`), every cached position in decode.
    """

    def __init__(self, layer: nn.Module, rotary: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.rotary = rotary

    def forward(
        self, hidden: torch.Tensor, past_key: torch.Tensor, past_value: torch.Tensor
    ) -> torch.Tensor:
        """Hidden states after the layer."""
        past = past_key.shape[2]
        positions = torch.arange(past, past + hidden.shape[1], device=hidden.device)[None]
        cache = None
        if past:
            cache = DynamicCache()
            cache.update(past_key, past_value, self.layer.self_attn.layer_idx)
        return self.layer(
            hidden,
            position_embeddings=self.rotary(hidden, positions),
            attention_mask=None,
            past_key_values=cache,
            use_cache=cache is not None,
        )


def _is_meta(piece: nn.Module) -> bool:
    """Whether the piece's weights live on the meta device (no storage)."""
    return any(p.is_meta for p in piece.parameters())


def on_cpu(piece: nn.Module, seed: int = 0) -> nn.Module:
    """The piece itself if it holds real weights, else a CPU copy with random weights."""
    if not _is_meta(piece):
        return piece
    torch.manual_seed(seed)
    real = copy.deepcopy(piece).to_empty(device="cpu")
    with torch.no_grad():
        for param in real.parameters():
            param.normal_(0.0, MATERIALISE_STD)
    return real


def model_of(adapter_or_model: ModelAdapter | nn.Module) -> nn.Module:
    """The top-level DeepSeek-OCR(-2) module of an adapter, or the module itself."""
    return (
        adapter_or_model.module if isinstance(adapter_or_model, ModelAdapter) else adapter_or_model
    )


def text_model(model: nn.Module) -> nn.Module:
    """The decoder stack (`layers`, `rotary_emb`, `config`): OCR-2 nests it as language_model."""
    return getattr(model.model, "language_model", model.model)


def _both_counts(
    piece: nn.Module, inputs: tuple[torch.Tensor, ...], meta_ok: bool = True
) -> dict[str, Any]:
    """FlopCounterMode and fvcore counts of one call, with per-op detail.

    A meta piece is counted by FlopCounterMode on the meta device when `meta_ok` (shapes
    alone decide its ops) and materialised on the CPU for fvcore, which must trace it.
    """
    meta = _is_meta(piece) and meta_ok
    real = on_cpu(piece)
    device = next(real.parameters()).device
    real_inputs = tuple(x.to(device) for x in inputs)
    if meta:
        fcm, fcm_ops = count_flopcountermode(piece, *(x.to("meta") for x in inputs))
    else:
        fcm, fcm_ops = count_flopcountermode(real, *real_inputs)
    fv, fv_ops, unsupported = count_fvcore(real, real_inputs)
    return {
        "flopcountermode": fcm,
        "fvcore": fv,
        "flopcountermode_by_op": fcm_ops,
        "fvcore_by_op": fv_ops,
        "fvcore_unsupported_ops": unsupported,
        "flopcountermode_device": "meta" if meta else str(device),
    }


def sum_counts(parts: list[tuple[int, dict[str, Any]]], note: str) -> dict[str, Any]:
    """Counts of several calls added up, each weighted by how often it runs."""
    total: dict[str, Any] = {
        "flopcountermode": 0.0,
        "fvcore": 0.0,
        "flopcountermode_by_op": {},
        "fvcore_by_op": {},
        "fvcore_unsupported_ops": {},
        "flopcountermode_device": parts[0][1]["flopcountermode_device"],
        "note": note,
    }
    for weight, counts in parts:
        total["flopcountermode"] += weight * counts["flopcountermode"]
        total["fvcore"] += weight * counts["fvcore"]
        for key in ("flopcountermode_by_op", "fvcore_by_op", "fvcore_unsupported_ops"):
            for op, n in counts[key].items():
                total[key][op] = total[key].get(op, 0) + weight * n
    return total


def _dtype_of(piece: nn.Module) -> torch.dtype:
    """Floating-point dtype of a module's weights."""
    return next(p.dtype for p in piece.parameters())


def vision_probes(
    model: nn.Module, dims: ModelDims, view_size: int
) -> dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    """The sam, clip and projector modules of one view with inputs of that view's shapes."""
    inner = model.model
    side = tokens_per_side(view_size)
    pixels_shape = (1, 3, view_size, view_size)
    if isinstance(dims, DeepseekOcr2Dims):
        tower = inner.vision_tower
        dtype = _dtype_of(inner.multi_modal_projector)
        return {
            "sam": (TensorOutput(tower.sam_encoder), (torch.randn(pixels_shape, dtype=dtype),)),
            "clip": (
                EncoderProbe(tower.vision_encoder, side * side),
                (torch.randn(1, 2 * side * side, dims.encoder.width, dtype=dtype),),
            ),
            "projector": (
                inner.multi_modal_projector,
                (torch.randn(1, side * side, dims.projector_in, dtype=dtype),),
            ),
        }
    dtype = _dtype_of(inner.projector)
    channels = dims.sam.compressor_channels[-1]
    return {
        "sam": (TensorOutput(inner.sam_model), (torch.randn(pixels_shape, dtype=dtype),)),
        "clip": (
            TensorOutput(inner.vision_model),
            (torch.randn(1, channels, side, side, dtype=dtype),),
        ),
        "projector": (
            inner.projector,
            (torch.randn(1, side * side, dims.projector_in, dtype=dtype),),
        ),
    }


def view_counts(
    adapter_or_model: ModelAdapter | nn.Module, dims: ModelDims, view_size: int
) -> dict[str, dict[str, Any]]:
    """Counts of sam, clip (or OCR-2's encoder) and projector for one view.

    DeepSeek-OCR's CLIP is fed SAM features of the view's shape and yields (view/64)^2
    positions plus the class token; DeepSeek-OCR-2's encoder is fed (view/64)^2 SAM tokens
    and as many queries. The projector sees (view/64)^2 tokens either way.
    """
    probes = vision_probes(model_of(adapter_or_model), dims, view_size)
    return {stage: _both_counts(module, inputs) for stage, (module, inputs) in probes.items()}


def decoder_layer_groups(dims: ModelDims) -> list[tuple[int, int]]:
    """(index of the layer counted, how many layers it stands for): the first dense layer
    for the dense ones, the first MoE layer for the MoE ones (none where there are none)."""
    dec = dims.decoder
    groups = ((0, dec.first_k_dense), (dec.first_k_dense, dec.layers - dec.first_k_dense))
    return [(index, repeats) for index, repeats in groups if repeats]


def decoder_counts(
    adapter_or_model: ModelAdapter | nn.Module, dims: ModelDims, q_len: int, context_len: int
) -> dict[str, Any]:
    """Counts of the decoder for q_len new tokens whose last one sees context_len positions.

    Prefill: q_len == context_len; decode step: q_len == 1. Scaled from one dense layer,
    one MoE layer and the lm_head on the last position. MoE layers run on real weights
    (the eager experts pick their work from the routing, which the meta device cannot do).
    """
    if not 1 <= q_len <= context_len:
        raise ValueError(
            f"decoder counts need 1 <= q_len <= context_len, got {q_len}, {context_len}"
        )
    model = model_of(adapter_or_model)
    dec = dims.decoder
    inner = text_model(model)
    dtype = _dtype_of(inner.layers[0])
    rotary = type(inner.rotary_emb)(inner.config)
    hidden = torch.randn(1, q_len, dec.hidden, dtype=dtype)
    past_kv = torch.randn(1, dec.kv_heads, context_len - q_len, dec.head_dim, dtype=dtype)
    parts: list[tuple[int, dict[str, Any]]] = []
    for index, repeats in decoder_layer_groups(dims):
        probe = DecoderLayerProbe(on_cpu(inner.layers[index]), rotary)
        parts.append((repeats, _both_counts(probe, (hidden, past_kv, past_kv))))
    last = torch.randn(1, dec.hidden, dtype=dtype)
    parts.append((1, _both_counts(model.lm_head, (last,))))
    return sum_counts(parts, DECODER_SCALING_NOTE)


def stage_counts(
    adapter_or_model: ModelAdapter | nn.Module,
    dims: ModelDims,
    view_size: int,
    prefill_len: int,
    context_len: int,
) -> dict[str, Any]:
    """Counted FLOPs of every stage: sam, clip, projector, llm_prefill and decode_step.

    Vision stages for one view of `view_size`, llm_prefill over `prefill_len` tokens,
    decode_step at `context_len` positions. Each stage holds `flopcountermode` and
    `fvcore` totals (FLOPs), per-op detail and fvcore's unsupported ops (occurrences).
    Meta pieces are materialised on the CPU one at a time with random weights; counting
    never needs the whole model in memory.
    """
    counts: dict[str, Any] = dict(view_counts(adapter_or_model, dims, view_size))
    counts["llm_prefill"] = decoder_counts(adapter_or_model, dims, prefill_len, prefill_len)
    counts["decode_step"] = decoder_counts(adapter_or_model, dims, 1, context_len)
    return counts


def relative_difference(counted: float, analytic: float) -> float:
    """(counted - analytic) / analytic; nan when the analytic value is 0."""
    return (counted - analytic) / analytic if analytic else math.nan

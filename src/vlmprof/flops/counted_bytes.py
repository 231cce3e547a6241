"""Memory traffic counted on the real modules: each op's tensor inputs read, outputs written.

This is what Nsight Compute measures when it flushes the caches before every kernel, seen
from PyTorch's dispatcher: an op that runs a kernel reads its inputs from memory and
writes its outputs once. Views move nothing and are skipped; an in-place op reads and
writes its target; gathers (embedding, index_select, gather, index) read only the rows
they return; scatters (index_add_, index_put_, ...) touch only the rows they write. Each op
is classed matmul-class (GEMMs, convolutions, attention: the ops whose bytes the analytic
model counts) or other (norms, activations, residual adds, copies, RoPE, routing), and
weights (module parameters) are kept apart from activations, so crops run as one batch
can be costed as the model runs them: weights once, activations per crop. The ops are
those of the device the modules run on: CPU kernels (its SDPA, say) are not CUDA's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from transformers.cache_utils import DynamicCache

from vlmprof.flops.analytic import ModelDims
from vlmprof.flops.counted import (
    decoder_layer_groups,
    model_of,
    on_cpu,
    text_model,
    vision_probes,
)

# aten op names of matmul-class work (the CPU and CUDA SDPA kernels included).
MATMUL_OPS = re.compile(r"^(mm|addmm|bmm|baddbmm|_grouped_mm|convolution|.*scaled_dot_product.*)$")
# Ops that read only the rows they return from their first tensor argument.
GATHER_OPS = frozenset({"embedding", "index_select", "gather", "index"})
# In-place ops that write only the rows their source (or index) names into their target.
SCATTER_OPS = frozenset({"index_add_", "index_copy_", "index_put_", "scatter_", "scatter_add_"})
# Ops that allocate or rename without moving data.
NO_TRAFFIC_OPS = frozenset(
    {
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "detach",
        "lift_fresh",
        "alias",
        "_unsafe_view",
    }
)


@dataclass(frozen=True)
class OpBytes:
    """Traffic of one op (or of all calls of it); `weights` is the part of `read` that reads
    module parameters."""

    read: float = 0.0
    write: float = 0.0
    weights: float = 0.0

    @property
    def total(self) -> float:
        return self.read + self.write

    @property
    def activations(self) -> float:
        return self.total - self.weights

    def __add__(self, other: OpBytes) -> OpBytes:
        return OpBytes(
            self.read + other.read, self.write + other.write, self.weights + other.weights
        )

    def scaled(self, weights: float, activations: float) -> OpBytes:
        """Weight reads times `weights`, all other traffic times `activations`."""
        other_reads = self.read - self.weights
        return OpBytes(
            self.weights * weights + other_reads * activations,
            self.write * activations,
            self.weights * weights,
        )


@dataclass
class ByteCount:
    """Bytes read and written by one call, op by op (aten op name to its traffic)."""

    by_op: dict[str, OpBytes] = field(default_factory=dict)

    def add(self, op: str, moved: OpBytes) -> None:
        self.by_op[op] = self.by_op.get(op, OpBytes()) + moved

    def _sum(self, matmul: bool | None) -> OpBytes:
        total = OpBytes()
        for op, moved in self.by_op.items():
            if matmul is None or bool(MATMUL_OPS.match(op)) == matmul:
                total += moved
        return total

    @property
    def total(self) -> OpBytes:
        return self._sum(None)

    @property
    def matmul(self) -> OpBytes:
        """Traffic of the matmul-class ops (GEMMs, convolutions, attention)."""
        return self._sum(True)

    @property
    def other(self) -> OpBytes:
        """Traffic of every other op (norms, activations, adds, copies, routing)."""
        return self._sum(False)

    def batched(self, n: int) -> ByteCount:
        """The call over n inputs in one batch: activations n times, weights read once."""
        return ByteCount({op: moved.scaled(1, n) for op, moved in self.by_op.items()})

    def scaled(self, k: float) -> ByteCount:
        """k calls alike (one layer standing for k layers, say)."""
        return ByteCount({op: moved.scaled(k, k) for op, moved in self.by_op.items()})

    def __add__(self, other: ByteCount) -> ByteCount:
        summed = ByteCount(dict(self.by_op))
        for op, moved in other.by_op.items():
            summed.add(op, moved)
        return summed


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a kernel touches reading or writing `tensor`: its elements, but never more than
    its storage holds (an expanded tensor repeats elements it reads once)."""
    if tensor.device.type == "meta":
        return tensor.numel() * tensor.element_size()
    return min(tensor.numel() * tensor.element_size(), tensor.untyped_storage().nbytes())


def _tensors(values: Iterable[Any]) -> list[torch.Tensor]:
    return [leaf for leaf in tree_leaves(list(values)) if isinstance(leaf, torch.Tensor)]


class BytesCounterMode(TorchDispatchMode):
    """Counts every dispatched op's traffic into `count`; `weights` holds the data pointers
    of the module parameters, whose reads are also tallied as weight bytes."""

    def __init__(self, weights: set[int]) -> None:
        super().__init__()
        self.weights = weights
        self.count = ByteCount()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if func.is_view or name in NO_TRAFFIC_OPS:
            return out
        extra_write = 0
        outputs = _tensors([out])
        inputs = _tensors([args, kwargs])
        if name in GATHER_OPS:
            inputs = inputs[1:]  # the indices; the rows read equal the output written
            read = sum(map(tensor_bytes, inputs)) + sum(map(tensor_bytes, outputs))
        elif name == "copy_":
            read = sum(map(tensor_bytes, inputs[1:]))
        elif name in SCATTER_OPS:
            # Reads index and source, then reads and writes as many rows of the target.
            rows = max(map(tensor_bytes, inputs[1:]), default=0)
            read = sum(map(tensor_bytes, inputs[1:])) + rows
            outputs, extra_write = [], rows
        else:
            read = sum(map(tensor_bytes, inputs))
        weights = sum(tensor_bytes(t) for t in inputs if self._is_weight(t))
        write = sum(map(tensor_bytes, outputs)) + extra_write
        self.count.add(name, OpBytes(read, write, weights))
        return out

    def _is_weight(self, tensor: torch.Tensor) -> bool:
        return tensor.device.type != "meta" and tensor.untyped_storage().data_ptr() in self.weights


def count_bytes(
    module: nn.Module, *inputs: Any, call: Callable[..., Any] | None = None
) -> ByteCount:
    """Bytes `module(*inputs)` (or `call(*inputs)`, running the module) moves, op by op,
    without autograd; reads of the module's parameters and buffers count as weights."""
    weights = {p.untyped_storage().data_ptr() for p in module.parameters()}
    weights |= {b.untyped_storage().data_ptr() for b in module.buffers()}
    counter = BytesCounterMode(weights)
    with torch.no_grad(), counter:
        (call or module)(*inputs)
    return counter.count


def view_bytes(model: nn.Module, dims: ModelDims, view_size: int) -> dict[str, ByteCount]:
    """Counted traffic of sam, clip (or OCR-2's encoder) and projector for one view."""
    probes = vision_probes(model_of(model), dims, view_size)
    return {stage: count_bytes(on_cpu(piece), *inputs) for stage, (piece, inputs) in probes.items()}


def vision_bytes(
    model: nn.Module, dims: ModelDims, base_size: int, crop_size: int | None, n_crops: int
) -> dict[str, ByteCount]:
    """Counted traffic of one page's vision: the global view plus `n_crops` crops run as one
    batch (weights once, activations per crop), keyed sam/clip/projector/vision."""
    parts = view_bytes(model, dims, base_size)
    if n_crops:
        crops = view_bytes(model, dims, crop_size or base_size)
        parts = {stage: count + crops[stage].batched(n_crops) for stage, count in parts.items()}
    parts["vision"] = parts["sam"] + parts["clip"] + parts["projector"]
    return parts


def _layer_bytes(layer: nn.Module, rotary: nn.Module, q_len: int, past_len: int) -> ByteCount:
    """One decoder layer over q_len new tokens with past_len cached: the cache is filled
    before counting, so only the step's own traffic (its cache append included) counts."""
    attention = layer.self_attn
    dtype = next(layer.parameters()).dtype
    hidden = torch.randn(1, q_len, attention.config.hidden_size, dtype=dtype)
    positions = torch.arange(past_len, past_len + q_len)[None]
    cache = DynamicCache()
    if past_len:
        shape = (1, attention.config.num_key_value_heads, past_len, attention.head_dim)
        keys, values = torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
        cache.update(keys, values, attention.layer_idx)
    with torch.no_grad():
        position_embeddings = rotary(hidden, positions)

    def step(hidden: torch.Tensor) -> Any:
        return layer(
            hidden,
            position_embeddings=position_embeddings,
            attention_mask=None,
            past_key_values=cache,
            use_cache=True,
        )

    return count_bytes(layer, hidden, call=step)


def decoder_bytes(model: nn.Module, dims: ModelDims, q_len: int, context_len: int) -> ByteCount:
    """Counted traffic of the decoder for q_len new tokens after context_len - q_len cached
    ones, scaled from one dense layer, one MoE layer and the lm_head on the last position
    (as the counted FLOPs are). RoPE's cos/sin tables are computed once per forward and
    left out."""
    model = model_of(model)
    dec = dims.decoder
    inner = text_model(model)
    rotary = type(inner.rotary_emb)(inner.config)
    total = ByteCount()
    for index, repeats in decoder_layer_groups(dims):
        layer = on_cpu(inner.layers[index])
        total = total + _layer_bytes(layer, rotary, q_len, context_len - q_len).scaled(repeats)
    head = on_cpu(model.lm_head)
    last = torch.randn(1, dec.hidden, dtype=next(head.parameters()).dtype)
    return total + count_bytes(head, last)

"""A module's forward replayed from one captured CUDA graph per input signature.

The vision encoders see only a few input shapes (the global view, and the crops of a
page's tile grid), each with fixed addresses once copied into static buffers, so each shape
can be captured once and replayed with a single launch instead of one launch per kernel.
Only `forward` is replaced, not the module call: forward hooks (stage timers, NVTX ranges,
profiler labels) keep running eagerly around the replay.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from vlmprof.models.implementation import wrap_forwards
from vlmprof.models.static_decode import GraphPool


@dataclass
class _Capture:
    """One input signature: its graph, the static inputs it reads and the output it writes."""

    graph: torch.cuda.CUDAGraph
    inputs: list[torch.Tensor]
    output: Any


def _signature(leaves: list[Any], spec: Any) -> tuple[Any, ...]:
    """What a captured graph is valid for: tensor shapes, dtypes and devices, other values."""
    parts: list[Any] = [str(spec)]
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            parts.append(("tensor", tuple(leaf.shape), leaf.dtype, str(leaf.device)))
        else:
            parts.append(("value", repr(leaf)))
    return tuple(parts)


def _clone_tensors(tree: Any) -> Any:
    return tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, tree)


class ShapeGraphs:
    """Call `forward` through a CUDA graph captured (into `pool`) on the first call of each
    signature."""

    def __init__(self, forward: Callable[..., Any], pool: GraphPool) -> None:
        self.forward = forward
        self.pool = pool
        self.captures: dict[tuple[Any, ...], _Capture] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        leaves, spec = tree_flatten((args, kwargs))
        key = _signature(leaves, spec)
        capture = self.captures.get(key)
        if capture is None:
            capture = self._capture(leaves, spec)
            self.captures[key] = capture
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        for static, value in zip(capture.inputs, tensors, strict=True):
            static.copy_(value)
        capture.graph.replay()
        return _clone_tensors(capture.output)  # the next replay overwrites the static output

    def _capture(self, leaves: list[Any], spec: Any) -> _Capture:
        """Warm the forward up on a side stream, then capture it on static copies of the
        inputs (the CUDA graph documentation asks for the warm-up)."""
        static_leaves = [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves]
        args, kwargs = tree_unflatten(static_leaves, spec)
        graph, output = self.pool.capture(lambda: self.forward(*args, **kwargs))
        inputs = [leaf for leaf in static_leaves if isinstance(leaf, torch.Tensor)]
        return _Capture(graph, inputs, output)


def graph_parts(module: torch.nn.Module, paths: Iterable[str], pool: GraphPool) -> None:
    """Replace the forward of each named submodule by a `ShapeGraphs` replay of it, its
    graphs captured into `pool` (the model's)."""
    wrap_forwards(module, paths, functools.partial(ShapeGraphs, pool=pool), "vision")

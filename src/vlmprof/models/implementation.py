"""Implementation switches any adapter can apply to its module: torch.compile, test perturbation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from weakref import WeakKeyDictionary

import torch

# Each module whose forward `wrap_forwards` replaced, with the forward it had before.
_UNWRAPPED: WeakKeyDictionary[torch.nn.Module, Callable[..., Any]] = WeakKeyDictionary()


def wrap_forwards(
    module: torch.nn.Module,
    paths: Iterable[str],
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
    switch: str,
) -> None:
    """Replace the forward of each named submodule by `wrap(forward)`.

    Only `forward` is replaced, not the module call, so forward hooks (stage timers, NVTX,
    profiler labels) keep running eagerly around the wrapped code. `switch` names the
    config key in the error for a path the model lacks.
    """
    named = dict(module.named_modules())
    for path in paths:
        if path not in named:
            raise ValueError(f"{switch}: module {path!r} not found in the model")
        target = named[path]
        _UNWRAPPED.setdefault(target, target.forward)
        target.forward = wrap(target.forward)


@contextmanager
def eager_forwards(module: torch.nn.Module) -> Iterator[None]:
    """Run the block with every forward of `module` that `wrap_forwards` replaced (compiled,
    replayed from a CUDA graph) back to its eager code, whose ops a dispatch mode (a FLOP or
    byte counter) sees; the wrapped forwards return afterwards."""
    wrapped = {sub: sub.forward for sub in module.modules() if sub in _UNWRAPPED}
    try:
        for sub in wrapped:
            sub.forward = _UNWRAPPED[sub]
        yield
    finally:
        for sub, forward in wrapped.items():
            sub.forward = forward


# Compiled versions dynamo keeps per code object before it runs the code uncompiled (its
# default `recompile_limit`).
RECOMPILES_PER_MODULE = 8


def compile_parts(
    module: torch.nn.Module, paths: Iterable[str], switch: str = "model.compile"
) -> None:
    """Replace the forward of each named submodule by its torch.compile'd version (`switch`
    names the config key in the error for a path the model lacks).

    Dynamo caches compiled versions per code object, and the layers of one class share
    their forward's code. Each decoder layer specialises on its own KV-cache layer (and on
    prefill against decode shapes), so a model's layers together outgrew the default limit
    of 8 and the rest ran uncompiled (an H100's `compile: decoder` decoded exactly as fast as
    eager). The limit is raised so that every compiled module has the default's room.
    """
    paths = tuple(paths)
    wrap_forwards(module, paths, torch.compile, switch)
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILES_PER_MODULE * len(paths))


def is_moe(module: torch.nn.Module, layer_path: str) -> bool:
    """Whether the decoder layer at `layer_path` routes its MLP through experts (a router
    at `mlp.gate` with a top-k), not a dense MLP."""
    mlp = module.get_submodule(layer_path).get_submodule("mlp")
    return hasattr(getattr(mlp, "gate", None), "top_k")


def perturb_weight(weight: torch.Tensor, scale: float, seed: int) -> None:
    """Add seeded Gaussian noise of `scale` times the weight's std (a deliberately wrong model)."""
    generator = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(weight.shape, generator=generator, dtype=torch.float32)
    with torch.no_grad():
        weight.add_((noise * scale * weight.float().std().item()).to(weight))

"""Implementation switches any adapter can apply to its module: torch.compile, upcasts for
the gate, test perturbations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

# Where a module whose forward `wrap_forwards` replaced keeps the forward it had before: on
# the module itself, so the pair goes with it (a table keyed by module, holding its bound
# forward, kept every wrapped model alive).
EAGER_FORWARD = "_eager_forward"

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


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
        target.__dict__.setdefault(EAGER_FORWARD, target.forward)
        target.forward = wrap(target.forward)


@contextmanager
def eager_forwards(module: torch.nn.Module) -> Iterator[None]:
    """Run the block with every forward of `module` that `wrap_forwards` replaced (compiled,
    replayed from a CUDA graph) back to its eager code, whose ops a dispatch mode (a FLOP or
    byte counter) sees; the wrapped forwards return afterwards."""
    wrapped = {sub: sub.forward for sub in module.modules() if EAGER_FORWARD in sub.__dict__}
    try:
        for sub in wrapped:
            sub.forward = sub.__dict__[EAGER_FORWARD]
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


def scale_decode_attention(
    module: torch.nn.Module, attention_path: str, factor: float
) -> torch.utils.hooks.RemovableHandle:
    """Multiply the output of the attention module at `attention_path` by `factor` at
    decode steps (one query per page), not in the prefill: a small wrong computation
    confined to decode, for the gate to catch (tests and the gate's resolution benchmark).
    Returns the hook's handle; remove it to undo."""

    def scaled(_module: torch.nn.Module, _args: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        if hidden.shape[1] != 1:
            return output
        hidden = hidden * factor
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    return module.get_submodule(attention_path).register_forward_hook(scaled)


# The precisions a gate run may cast a model's weights to.
UPCASTS = {"float32": torch.float32, "float64": torch.float64}


def upcast(module: ModuleT, dtype: str | None) -> ModuleT:
    """`module` with its floating-point weights and buffers cast to `dtype` (the gate's
    higher-precision runs of the same weights); as built when `dtype` is None."""
    if dtype is not None:
        if dtype not in UPCASTS:
            raise ValueError(f"upcast: {dtype!r} is not allowed; use {', '.join(UPCASTS)}")
        module.to(UPCASTS[dtype])
    return module

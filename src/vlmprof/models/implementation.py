"""Implementation switches any adapter can apply to its module: torch.compile, test perturbation."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def compile_parts(module: torch.nn.Module, paths: Iterable[str]) -> None:
    """Replace the forward of each named submodule by its torch.compile'd version.

    Only `forward` is compiled, not the module call, so forward hooks (stage timers, NVTX,
    profiler labels) keep running eagerly around the compiled code.
    """
    named = dict(module.named_modules())
    for path in paths:
        if path not in named:
            raise ValueError(f"model.compile: module {path!r} not found in the model")
        target = named[path]
        target.forward = torch.compile(target.forward)


def perturb_weight(weight: torch.Tensor, scale: float, seed: int) -> None:
    """Add seeded Gaussian noise of `scale` times the weight's std (a deliberately wrong model)."""
    generator = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(weight.shape, generator=generator, dtype=torch.float32)
    with torch.no_grad():
        weight.add_((noise * scale * weight.float().std().item()).to(weight))

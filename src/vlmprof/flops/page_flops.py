"""FLOPs of each stage of one page, counted by FlopCounterMode over the adapter's own run:
any model, whatever its module layout, at the page's real shapes.

The adapter's prefill and one decode step run under the counter. Hooks on the modules of
the adapter's stage map read the running total as each stage's forward starts and ends, so
a stage's FLOPs are what ran inside its modules; LLM prefill is the rest of the prefill.
The attention core is counted whatever the kernel (as matmuls in eager attention, SDPA by
the formula torch uses for its CUDA kernels, given to the CPU kernel too), and so are the
experts (the loop's matmuls, or the grouped matmul by `counted.COUNTER_FORMULAS`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from vlmprof.flops.counted import COUNTER_FORMULAS
from vlmprof.models.base import ModelAdapter, ModelInputs


def page_stage_flops(adapter: ModelAdapter, inputs: ModelInputs) -> dict[str, float]:
    """Counted FLOPs of one page (`inputs` on the adapter's device): each vision stage of
    the adapter's stage map, vision, llm_prefill, prefill and one decode_step after it."""
    counter = FlopCounterMode(display=False, custom_mapping=COUNTER_FORMULAS)
    stages: dict[str, float] = defaultdict(float)
    started: dict[int, float] = {}

    def start(module: torch.nn.Module, _args: Any) -> None:
        started[id(module)] = counter.get_total_flops()

    def finish(stage: str) -> Any:
        def hook(module: torch.nn.Module, _args: Any, _output: Any) -> None:
            stages[stage] += counter.get_total_flops() - started.pop(id(module))

        return hook

    handles = []
    for path, stage in adapter.stage_modules().items():
        module = adapter.module.get_submodule(path)
        handles.append(module.register_forward_pre_hook(start))
        handles.append(module.register_forward_hook(finish(stage)))
    try:
        adapter.reserve(2)
        with torch.no_grad(), counter:
            logits, state = adapter.prefill(inputs)
            prefill = float(counter.get_total_flops())
            adapter.decode_step(logits.argmax(dim=-1, keepdim=True), state)
            decode_step = float(counter.get_total_flops()) - prefill
    finally:
        for handle in handles:
            handle.remove()
    vision = float(sum(stages.values()))
    return {
        **{stage: float(flops) for stage, flops in stages.items()},
        "vision": vision,
        "llm_prefill": prefill - vision,
        "prefill": prefill,
        "decode_step": decode_step,
    }

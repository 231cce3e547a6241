"""FLOPs and bytes of each stage of one page, counted over the adapter's own run: any model,
whatever its module layout, at the page's real shapes.

The adapter's prefill and two decode steps run under FlopCounterMode and the traffic
counter (`counted_bytes`), on the released decode path whatever the adapter's decode switch
(a static cache would count attention over its whole padded length, a CUDA graph its
warm-up runs and nothing of its replays), and with compiled or graph-replayed parts run as
their eager code (`implementation.eager_forwards`), whose ops a dispatch mode sees. Hooks on
the modules of the adapter's stage map read the running totals as each stage's forward
starts and ends, so a stage's work is what ran inside its modules; LLM prefill is the rest
of the prefill. The attention core is counted whatever the kernel (as matmuls in eager
attention, SDPA as the kernel computes it, causal or not, by `counted.COUNTER_FORMULAS`),
and so are the experts (the loop's matmuls, or the grouped matmul).

Bytes come twice: `bytes`, those of the matmul-class ops (weights read, activations read
and written, attention's KV reads), which stand for the necessary bytes of a model without
formulas; and `bytes_as_implemented`, every op's reads and writes, with
`weight_bytes_as_implemented` the part of them that reads weights (a batch shares it). A
decode step's work grows by the same amount with every cached position, so the two counted
steps give every later one (`flops.work.decode_work`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from vlmprof.flops.counted import COUNTER_FORMULAS
from vlmprof.flops.counted_bytes import BytesCounterMode
from vlmprof.flops.work import WORK_KEYS
from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.models.implementation import eager_forwards


def page_work(adapter: ModelAdapter, inputs: ModelInputs) -> dict[str, dict[str, float]]:
    """Counted work (`WORK_KEYS`) of one page (`inputs` on the adapter's device): each vision
    stage of the adapter's stage map, vision, llm_prefill, prefill, the first decode step
    after the prefill and the one after it (`decode_step`, `decode_step_next`)."""
    flop_counter = FlopCounterMode(display=False, custom_mapping=COUNTER_FORMULAS)
    weights = {p.untyped_storage().data_ptr() for p in adapter.module.parameters()}
    byte_counter = BytesCounterMode(weights)

    def totals() -> tuple[float, ...]:
        every_op = byte_counter.count.total
        return (
            float(flop_counter.get_total_flops()),
            byte_counter.count.matmul.total,
            every_op.total,
            every_op.weights,
        )

    stages: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(WORK_KEYS))
    started: dict[int, tuple[float, ...]] = {}

    def start(module: torch.nn.Module, _args: Any) -> None:
        started[id(module)] = totals()

    def finish(stage: str) -> Any:
        def hook(module: torch.nn.Module, _args: Any, _output: Any) -> None:
            begun = started.pop(id(module))
            for i, now in enumerate(totals()):
                stages[stage][i] += now - begun[i]

        return hook

    handles = []
    for path, stage in adapter.stage_modules().items():
        module = adapter.module.get_submodule(path)
        handles.append(module.register_forward_pre_hook(start))
        handles.append(module.register_forward_hook(finish(stage)))
    try:
        with (
            torch.no_grad(),
            adapter.released_decode(),
            eager_forwards(adapter.module),
            flop_counter,
            byte_counter,
        ):
            # The prefill's token and two decode steps.
            logits, state = adapter.prefill(inputs, 3)
            prefill = totals()
            token = logits.argmax(dim=-1, keepdim=True)
            logits = adapter.decode_step(token, state)
            first = totals()
            adapter.decode_step(logits.argmax(dim=-1, keepdim=True), state)
            second = totals()
    finally:
        for handle in handles:
            handle.remove()
    vision = [sum(values[i] for values in stages.values()) for i in range(len(WORK_KEYS))]

    def work(values: Any) -> dict[str, float]:
        return dict(zip(WORK_KEYS, map(float, values), strict=True))

    return {
        **{stage: work(values) for stage, values in stages.items()},
        "vision": work(vision),
        "llm_prefill": work(p - v for p, v in zip(prefill, vision, strict=True)),
        "prefill": work(prefill),
        "decode_step": work(f - p for f, p in zip(first, prefill, strict=True)),
        "decode_step_next": work(s - f for s, f in zip(second, first, strict=True)),
    }

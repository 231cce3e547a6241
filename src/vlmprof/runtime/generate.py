"""Greedy generation: prefill, then a token loop with a KV cache, under stage instruments."""

from __future__ import annotations

import torch

from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.runtime.instruments import Instruments


def greedy_generate(
    adapter: ModelAdapter,
    inputs: ModelInputs,
    max_new_tokens: int,
    instruments: Instruments,
    eos_id: int | None = None,
) -> torch.Tensor:
    """Generate up to `max_new_tokens` tokens greedily; returns them as a (n,) tensor.

    The first token comes from the prefill logits; the decode stage runs the remaining
    `max_new_tokens - 1` steps. With `eos_id` None (random weights, `ignore_eos`) every run
    generates exactly `max_new_tokens`, and no step waits for the device; with an `eos_id`
    each step reads its token back to decide whether to stop.
    """
    timer = instruments.timer
    with torch.inference_mode():
        ttft = timer.start("ttft") if timer is not None else None
        with instruments.stage("prefill"):
            logits, state = adapter.prefill(inputs)
        token = logits.argmax(dim=-1, keepdim=True)
        if timer is not None and ttft is not None:
            timer.stop(ttft)
        generated = [token]
        with instruments.stage("decode"):
            for _ in range(max_new_tokens - 1):
                if eos_id is not None and int(token.item()) == eos_id:
                    break
                step = timer.start("decode_step") if timer is not None else None
                logits = adapter.decode_step(token, state)
                token = logits.argmax(dim=-1, keepdim=True)
                if timer is not None and step is not None:
                    timer.stop(step)
                generated.append(token)
    return torch.cat(generated, dim=-1).reshape(-1)

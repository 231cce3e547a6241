"""Greedy generation: prefill, then a token loop with a KV cache, under stage instruments."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.runtime.instruments import Instruments

# Logits kept per step for the correctness gate: the chosen token and its closest rivals,
# so a divergence between two implementations can be told apart from a near-tie (in bf16,
# random weights give exact ties between several tokens).
TOP_K = 8


@dataclass
class GenerationCapture:
    """What an untimed generation keeps for the correctness gate (all on the CPU, fp32)."""

    first_logits: torch.Tensor | None = None
    top_values: list[torch.Tensor] = field(default_factory=list)
    top_indices: list[torch.Tensor] = field(default_factory=list)

    def observe(self, logits: torch.Tensor) -> None:
        """Keep one step's top-k (and the whole first step's logits)."""
        if self.first_logits is None:
            self.first_logits = logits.reshape(-1).float().cpu()
        values, indices = logits.reshape(-1).float().topk(TOP_K)
        self.top_values.append(values)
        self.top_indices.append(indices)

    def to_dict(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tensors to save: tokens, first-step logits, per-step top-k values and indices."""
        if self.first_logits is None:
            raise ValueError("nothing captured: the generation produced no logits")
        return {
            "tokens": tokens.cpu(),
            "first_logits": self.first_logits,
            "top_values": torch.stack(self.top_values).cpu(),
            "top_indices": torch.stack(self.top_indices).cpu(),
        }


def greedy_generate(
    adapter: ModelAdapter,
    inputs: ModelInputs,
    max_new_tokens: int,
    instruments: Instruments,
    eos_id: int | None = None,
    capture: GenerationCapture | None = None,
) -> torch.Tensor:
    """Generate up to `max_new_tokens` tokens greedily; returns them as a (n,) tensor.

    The first token comes from the prefill logits; the decode stage runs the remaining
    `max_new_tokens - 1` steps. With `eos_id` None (random weights, `ignore_eos`) every run
    generates exactly `max_new_tokens`, and no step waits for the device; with an `eos_id`
    each step reads its token back to decide whether to stop (decode steps are timed back
    to back, so that read-back counts in the step after it). A `capture` keeps each step's
    logits summary; it is for untimed runs only, as it adds work to every step.
    """
    timer = instruments.timer
    adapter.reserve(max_new_tokens)
    with torch.inference_mode():
        ttft = timer.start("ttft") if timer is not None else None
        with instruments.stage("prefill"):
            logits, state = adapter.prefill(inputs)
        token = logits.argmax(dim=-1, keepdim=True)
        if timer is not None and ttft is not None:
            timer.stop(ttft)
        if capture is not None:
            capture.observe(logits)
        generated = [token]
        with instruments.stage("decode"):
            step_done = timer.laps("decode_step") if timer is not None else None
            for _ in range(max_new_tokens - 1):
                if eos_id is not None and int(token.item()) == eos_id:
                    break
                logits = adapter.decode_step(token, state)
                token = logits.argmax(dim=-1, keepdim=True)
                if step_done is not None:
                    step_done()
                if capture is not None:
                    capture.observe(logits)
                generated.append(token)
    return torch.cat(generated, dim=-1).reshape(-1)

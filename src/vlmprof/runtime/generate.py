"""Greedy generation of one page or a batch: prefill, then a token loop with a KV cache,
under stage instruments."""

from __future__ import annotations

from collections.abc import Sequence
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
        steps = int(tokens.numel())  # a page of a batch may end before the batch's last step
        return {
            "tokens": tokens.cpu(),
            "first_logits": self.first_logits,
            "top_values": torch.stack(self.top_values[:steps]).cpu(),
            "top_indices": torch.stack(self.top_indices[:steps]).cpu(),
        }


def greedy_generate(
    adapter: ModelAdapter,
    inputs: ModelInputs,
    max_new_tokens: int,
    instruments: Instruments,
    eos_id: int | None = None,
    capture: GenerationCapture | None = None,
) -> torch.Tensor:
    """Generate up to `max_new_tokens` tokens of one page greedily; returns them as (n,).

    The first token comes from the prefill logits; the decode stage runs the remaining
    `max_new_tokens - 1` steps. With `eos_id` None (random weights, `ignore_eos`) every run
    generates exactly `max_new_tokens`, and no step waits for the device; with an `eos_id`
    each step reads its token back to decide whether to stop (decode steps are timed back
    to back, so that read-back counts in the step after it). A `capture` keeps each step's
    logits summary; it is for untimed runs only, as it adds work to every step.
    """
    captures = None if capture is None else [capture]
    return generate_batch(adapter, [inputs], max_new_tokens, instruments, eos_id, captures)[0]


def generate_batch(
    adapter: ModelAdapter,
    batch: Sequence[ModelInputs],
    max_new_tokens: int,
    instruments: Instruments,
    eos_id: int | None = None,
    captures: Sequence[GenerationCapture] | None = None,
) -> list[torch.Tensor]:
    """Generate greedily for several pages at once (one prefill, one decode step per token
    for all of them); returns each page's tokens, cut after its first `eos_id`.

    With an `eos_id` the batch stops once every page has ended it. `captures` (one per
    page) keep each step's logits summary, as `greedy_generate`'s `capture` does.
    """
    timer = instruments.timer
    adapter.reserve(max_new_tokens)
    with torch.inference_mode():
        ttft = timer.start("ttft") if timer is not None else None
        with instruments.stage("prefill"):
            logits, state = adapter.prefill_batch(batch)
        token = logits.argmax(dim=-1, keepdim=True)
        if timer is not None and ttft is not None:
            timer.stop(ttft)
        _observe(captures, logits)
        generated = [token]
        ended = None if eos_id is None else token == eos_id
        with instruments.stage("decode"):
            step_done = timer.laps("decode_step") if timer is not None else None
            for _ in range(max_new_tokens - 1):
                if ended is not None and bool(ended.all()):
                    break
                logits = adapter.decode_step(token, state)
                token = logits.argmax(dim=-1, keepdim=True)
                if step_done is not None:
                    step_done()
                _observe(captures, logits)
                generated.append(token)
                if ended is not None:
                    ended |= token == eos_id
    tokens = torch.cat(generated, dim=-1)
    return [_until_end(row, eos_id) for row in tokens]


def _observe(captures: Sequence[GenerationCapture] | None, logits: torch.Tensor) -> None:
    """Give each page's capture its row of one step's logits."""
    if captures is not None:
        for capture, row in zip(captures, logits, strict=True):
            capture.observe(row)


def _until_end(tokens: torch.Tensor, eos_id: int | None) -> torch.Tensor:
    """One page's tokens up to and including its first `eos_id` (all of them without one)."""
    if eos_id is None:
        return tokens
    ends = (tokens == eos_id).nonzero()
    return tokens if ends.numel() == 0 else tokens[: int(ends[0]) + 1]

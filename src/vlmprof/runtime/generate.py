"""Greedy generation of one page or a batch: prefill, then a token loop with a KV cache,
under stage instruments; untimed, it can feed another run's tokens back (teacher forcing)
and keep what the correctness gate compares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from vlmprof.models.base import DecodeState, ModelAdapter, ModelInputs
from vlmprof.runtime.instruments import Instruments

# Logits kept per step for the correctness gate: the chosen token and its closest rivals.
TOP_K = 8
# Vocabulary entries whose logits every step keeps besides the leading ones: a fixed,
# seeded sample, the same in every run of a model, so two runs' logits are compared entry
# by entry (a wrong hidden state moves nearly every logit, so a sample sees it) without
# saving the whole vocabulary at every step.
PROBE_SAMPLE = 248
PROBE_SEED = 0


def probe_sample(vocab: int) -> torch.Tensor:
    """The fixed vocabulary sample every run of a `vocab`-sized model keeps (sorted ids)."""
    generator = torch.Generator().manual_seed(PROBE_SEED)
    picked = torch.randperm(vocab, generator=generator)[: min(PROBE_SAMPLE, vocab)]
    return picked.sort().values


@dataclass
class GenerationCapture:
    """What an untimed generation keeps for the correctness gate (all on the CPU, fp32).

    Per step: the top-k logits and their ids, and the probe: the logits at the leading ids
    (`leading[step]`, another run's top-k when given, else this run's own) and at the fixed
    vocabulary sample, so runs fed the same tokens are compared entry by entry.
    """

    leading: torch.Tensor | None = None
    first_logits: torch.Tensor | None = None
    top_values: list[torch.Tensor] = field(default_factory=list)
    top_indices: list[torch.Tensor] = field(default_factory=list)
    probe_values: list[torch.Tensor] = field(default_factory=list)
    sample: torch.Tensor | None = None

    def observe(self, logits: torch.Tensor) -> None:
        """Keep one step's top-k and probe (and the whole first step's logits)."""
        row = logits.reshape(-1).float()
        if self.first_logits is None:
            self.first_logits = row.cpu()
            self.sample = probe_sample(row.numel()).to(row.device)
        assert self.sample is not None
        values, indices = row.topk(TOP_K)
        step = len(self.top_values)
        leading = indices
        if self.leading is not None and step < self.leading.shape[0]:
            leading = self.leading[step].to(row.device)
        self.top_values.append(values)
        self.top_indices.append(indices)
        self.probe_values.append(row[torch.cat([leading, self.sample])])

    def to_dict(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tensors to save: tokens, first-step logits, per-step top-k values and indices,
        per-step probe values (leading ids first, then the sample)."""
        if self.first_logits is None:
            raise ValueError("nothing captured: the generation produced no logits")
        steps = int(tokens.numel())  # a page of a batch may end before the batch's last step
        return {
            "tokens": tokens.cpu(),
            "first_logits": self.first_logits,
            "top_values": torch.stack(self.top_values[:steps]).cpu(),
            "top_indices": torch.stack(self.top_indices[:steps]).cpu(),
            "probe_values": torch.stack(self.probe_values[:steps]).cpu(),
        }


@dataclass
class Generation:
    """What one generation of a batch made: each page's tokens (cut at its own length or its
    end-of-sequence) and the decode steps the batch ran (the prefill gives each page its
    first token; every later one is a decode step of the whole batch)."""

    tokens: list[torch.Tensor]
    decode_steps: int

    @property
    def slot_steps(self) -> int:
        """Decode slot-steps: every page keeps its slot in every decode step of the batch."""
        return len(self.tokens) * self.decode_steps

    @property
    def idle_slot_steps(self) -> int:
        """Slot-steps run for pages that had already ended (static batching's cost): a page
        is busy for one decode step per token after its first."""
        return self.slot_steps - sum(int(page.numel()) - 1 for page in self.tokens)


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
    run = generate_batch(adapter, [inputs], [max_new_tokens], instruments, eos_id, captures)
    return run.tokens[0]


def generate_batch(
    adapter: ModelAdapter,
    batch: Sequence[ModelInputs],
    lengths: Sequence[int],
    instruments: Instruments,
    eos_id: int | None = None,
    captures: Sequence[GenerationCapture] | None = None,
    forced: Sequence[torch.Tensor] | None = None,
) -> Generation:
    """Generate greedily for several pages at once (one prefill, one decode step per token
    for all of them), each page up to its own length (`lengths`, in tokens).

    A page past its length, or past its first `eos_id`, keeps its slot in the batch, but its
    later tokens are cut; the batch stops once every page has ended, and its KV cache is
    sized to the longest page by the prefill. Without an `eos_id` the ends are known on the
    host, so no step waits for the device. `captures` (one per page) keep each step's logits
    summary, as `greedy_generate`'s `capture` does. With `forced` (each page's tokens from
    another run, at least its length) every step is fed that run's previous token instead
    of this run's pick (teacher forcing: both runs see one sequence, so their logits can be
    compared at every step), and each page returns its own picks, cut to its length.
    """
    if len(lengths) != len(batch) or min(lengths) < 1:
        raise ValueError(f"lengths {list(lengths)}: one of at least 1 token for each page")
    if forced is not None and any(p.numel() < n for p, n in zip(forced, lengths, strict=True)):
        raise ValueError("teacher forcing: a page is fed fewer tokens than its length")
    timer = instruments.timer
    steps = max(lengths)
    with torch.inference_mode():
        ttft = timer.start("ttft") if timer is not None else None
        with instruments.stage("prefill"):
            logits, state = adapter.prefill_batch(batch, steps)
        token = logits.argmax(dim=-1, keepdim=True)
        if timer is not None and ttft is not None:
            timer.stop(ttft)
        _observe(captures, logits)
        ends = None
        if eos_id is not None and forced is None:
            ends = _Ends(eos_id, torch.tensor(lengths, device=token.device).unsqueeze(-1))
        with instruments.stage("decode"):
            generated = _decode(adapter, state, token, steps, instruments, captures, ends, forced)
    tokens = torch.cat(generated, dim=-1)
    eos = eos_id if forced is None else None
    pages = [_until_end(row[:length], eos) for row, length in zip(tokens, lengths, strict=True)]
    return Generation(pages, len(generated) - 1)


@dataclass
class _Ends:
    """Which pages of a batch have ended, on the device: at `eos_id` or at their length."""

    eos_id: int
    lengths: torch.Tensor
    ended: torch.Tensor | None = None

    def update(self, token: torch.Tensor, made: int) -> bool:
        """Note `token` (B, 1), the `made`-th of every page; whether every page has ended (a
        read-back that waits for the device)."""
        now = (token == self.eos_id) | (self.lengths <= made)
        self.ended = now if self.ended is None else self.ended | now
        return bool(self.ended.all())


def _decode(
    adapter: ModelAdapter,
    state: DecodeState,
    token: torch.Tensor,
    steps: int,
    instruments: Instruments,
    captures: Sequence[GenerationCapture] | None,
    ends: _Ends | None,
    forced: Sequence[torch.Tensor] | None,
) -> list[torch.Tensor]:
    """The decode loop after the prefill's `token`: up to `steps - 1` steps, fewer once
    `ends` says every page has ended; every step's tokens (B, 1), the prefill's first."""
    feed = None if forced is None else _forced_feed(forced, token.device)
    step_done = instruments.timer.laps("decode_step") if instruments.timer is not None else None
    generated = [token]
    for step in range(1, steps):
        if ends is not None and ends.update(token, step):
            break
        fed = token if feed is None else feed[:, step - 1 : step]
        logits = adapter.decode_step(fed, state)
        token = logits.argmax(dim=-1, keepdim=True)
        if step_done is not None:
            step_done()
        _observe(captures, logits)
        generated.append(token)
    return generated


def _forced_feed(forced: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """The pages' forced tokens as one (B, longest) tensor on `device`; a shorter page is
    fed token 0 after its end (its picks there are cut off)."""
    feed = torch.zeros((len(forced), max(int(page.numel()) for page in forced)), dtype=torch.long)
    for row, page in enumerate(forced):
        feed[row, : page.numel()] = page.reshape(-1)
    return feed.to(device)


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

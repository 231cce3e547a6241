"""The untimed generations around the timed ones: the warm-up, and the reference runs that
keep what the correctness gate compares."""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence

import torch
from PIL import Image

from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.runtime.generate import GenerationCapture, generate_batch
from vlmprof.runtime.instruments import Instruments
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.page_source import page_inputs
from vlmprof.runtime.profile_settings import ProfileSettings


def warm_up(
    adapter: ModelAdapter,
    pages: Sequence[Image.Image],
    rounds: int,
    max_new_tokens: int,
    batch_size: int = 1,
    preprocess: str = "cpu",
) -> None:
    """Run untimed generations of `batch_size` pages (made into inputs where `preprocess`
    says) so one-off costs (allocator, kernels, caches, graphs of that batch size) stay out."""
    nvtx = NvtxRanges(enabled=False)
    for round_index in range(rounds):
        batch = [
            page_inputs(adapter, pages[(round_index + row) % len(pages)], preprocess).to(
                adapter.device, adapter.dtype
            )
            for row in range(batch_size)
        ]
        generate_batch(adapter, batch, [max_new_tokens] * batch_size, Instruments(None, nvtx))
    if adapter.device.type == "cuda":
        torch.cuda.synchronize()


def reference_outputs(
    adapter: ModelAdapter,
    inputs_cpu: ModelInputs,
    settings: ProfileSettings,
    against: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """One untimed generation of a page (of `settings.max_new_tokens`, or fed `against`'s
    tokens) that keeps what the correctness gate compares."""
    return batch_reference_outputs(
        adapter, [inputs_cpu], settings, None if against is None else [against]
    )[0]


def batch_reference_outputs(
    adapter: ModelAdapter,
    batch_cpu: Sequence[ModelInputs],
    settings: ProfileSettings,
    against: Sequence[Mapping[str, torch.Tensor]] | None = None,
    lengths: Sequence[int] | None = None,
) -> list[dict[str, torch.Tensor]]:
    """One untimed generation of a batch that keeps, per page, what the correctness gate
    compares (so a batched variant is judged page by page against the lone baseline); each
    page generates up to its length (`lengths`; default `settings.max_new_tokens`).

    With `against` (the baseline's saved outputs of these pages) the generation is
    teacher-forced on the baseline's tokens, each page as long as the baseline's, and every
    step's probe keeps the baseline's leading ids, so the gate compares both runs' logits at
    every step of one sequence.

    It doubles as the batch's warm-up (`warmup_per_image`): the first run of a new input
    shape pays one-off costs (allocator growth, kernel selection), on an H100 up to 2.5x
    the later repeats.
    """
    batch = [inputs.to(adapter.device, adapter.dtype) for inputs in batch_cpu]
    forced = None if against is None else [ref["tokens"] for ref in against]
    if forced is not None:
        lengths = [int(tokens.numel()) for tokens in forced]
    elif lengths is None:
        lengths = [settings.max_new_tokens] * len(batch)
    leading = [None] * len(batch) if against is None else [ref["top_indices"] for ref in against]
    captures = [GenerationCapture(leading=rows) for rows in leading]
    eos = None if settings.ignore_eos else settings.eos_id
    instruments = Instruments(None, NvtxRanges(enabled=False))
    run = generate_batch(adapter, batch, lengths, instruments, eos, captures, forced)
    return [capture.to_dict(page) for capture, page in zip(captures, run.tokens, strict=True)]


def free_memory(device: torch.device) -> None:
    """Drop cached blocks after a failed run (or a model no longer used) so the next run
    starts clean.

    Call it after the `except` clause: while the exception is alive its traceback keeps the
    failed run's tensors (pytorch/pytorch#18853).
    """
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

"""The correctness gate's runs outside the timing pass: an arm's model fed the baseline's
tokens page by page, at a higher precision than the run's.

Two kinds of job use it: the oracle (the released code path with the baseline's weights in
float64), against which every arm's error is measured, and an arm's check (the arm's own
code path with its weights in float32, where the run is narrower), which tells a wrong code
path from rounding. Both keep what the timing pass's reference run keeps
(`runtime.generate.GenerationCapture`), for the same pages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from vlmprof.data.image_loader import ImageLoadError, load_page
from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.progress import Progress
from vlmprof.runtime.page_source import page_inputs
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.untimed_runs import batch_reference_outputs, free_memory

log = logging.getLogger(__name__)

Saved = dict[str, torch.Tensor]


@contextmanager
def exact_float32() -> Iterator[None]:
    """Float32 matmuls and convolutions computed in float32, not TensorFloat-32 (cuDNN
    allows it for convolutions by default), for the block."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _forced_batch(
    adapter: ModelAdapter,
    batch: Sequence[tuple[str, ModelInputs]],
    against: Mapping[str, Saved],
    settings: ProfileSettings,
) -> dict[str, Saved]:
    """One batch fed the baseline's tokens; a batch that runs out of memory (a higher
    precision needs more than the run did) is run again as two halves."""
    try:
        ids = [image for image, _ in batch]
        inputs = [page for _, page in batch]
        outputs = batch_reference_outputs(adapter, inputs, settings, [against[i] for i in ids])
        return dict(zip(ids, outputs, strict=True))
    except torch.OutOfMemoryError:
        if len(batch) == 1:
            raise
    free_memory(adapter.device)
    half = len(batch) // 2
    log.warning("a batch of %d pages ran out of memory; running it as two halves", len(batch))
    return _forced_batch(adapter, batch[:half], against, settings) | _forced_batch(
        adapter, batch[half:], against, settings
    )


def teacher_forced_outputs(
    adapter: ModelAdapter,
    images: Sequence[tuple[str, Path]],
    against: Mapping[str, Saved],
    settings: ProfileSettings,
    progress_label: str,
) -> dict[str, Saved]:
    """Each page of `images` that the baseline has outputs for (`against`), generated
    `settings.batch_size` at a time fed the baseline's tokens: what the gate compares, by
    image_id.

    A page the baseline could not run has no tokens to feed and is left out, as is one that
    cannot be read here (its baseline records say why)."""
    pages: list[tuple[str, ModelInputs]] = []
    for image_id, path in images:
        if image_id not in against:
            continue
        try:
            image = load_page(path, settings.max_pixels)
            pages.append((image_id, page_inputs(adapter, image, settings.preprocess)))
        except (ImageLoadError, OSError, ValueError) as error:
            log.warning("page %s left out: %s", image_id, error)
    progress = Progress(progress_label, len(pages))
    outputs: dict[str, Saved] = {}
    batch_size = settings.batch_size
    for first in range(0, len(pages), batch_size):
        batch = pages[first : first + batch_size]
        outputs |= _forced_batch(adapter, batch, against, settings)
        progress.step(f"pages {first + 1}-{first + len(batch)}/{len(pages)}", len(batch))
    return outputs

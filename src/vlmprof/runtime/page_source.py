"""Pages loaded and preprocessed for the timing pass: inline, or by worker processes that run
ahead of the GPU.

Inline (workers 0, the released flow) the GPU waits for each page's load and preprocessing.
With workers, torch's DataLoader forks processes that load and preprocess the next pages
while the current ones run, so a page's host time overlaps other pages' GPU time; what the
timing pass still waits for is measured as `input_wait_ms`. Workers are forked after the
model is built and never touch the GPU (CPU preprocessing only).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vlmprof.data.image_loader import ImageLoadError, load_page
from vlmprof.models.base import ModelAdapter, ModelInputs

# Pages each worker keeps ready ahead of the timing pass.
PREFETCH_PER_WORKER = 2


@dataclass
class LoadedPage:
    """One page as the timing pass gets it: its inputs, or why it could not be read."""

    image_id: str
    path: Path
    image: Image.Image | None = None
    inputs: ModelInputs | None = None
    load_ms: float | None = None
    preprocess_ms: float | None = None
    error: str | None = None
    # How long the timing pass waited for this page once it asked for it.
    input_wait_ms: float | None = None
    # Host clock (time.perf_counter: CLOCK_MONOTONIC, shared by the worker processes) of
    # the load's start and the preprocessing's end, and of the wait's start and end.
    host_span_s: list[float] | None = None
    wait_span_s: list[float] | None = None


def error_reason(error: BaseException) -> str:
    """The one-line reason an error record keeps: the exception's type and first line."""
    return f"{type(error).__name__}: {error}".splitlines()[0]


def page_inputs(adapter: ModelAdapter, image: Image.Image, preprocess: str) -> ModelInputs:
    """`image` made into `adapter`'s inputs where the run's `preprocess` setting says: on the
    host (cpu, the released code) or on the model's device (gpu)."""
    if preprocess == "gpu":
        return adapter.preprocess_on_device(image)
    return adapter.preprocess(image)


class _Pages(Dataset):
    """Page i of `images`, loaded and preprocessed by `adapter` (in a worker, if any)."""

    def __init__(
        self,
        adapter: ModelAdapter,
        images: Sequence[tuple[str, Path]],
        max_pixels: int,
        preprocess: str,
    ) -> None:
        self.adapter, self.images, self.max_pixels = adapter, images, max_pixels
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> LoadedPage:
        image_id, path = self.images[index]
        loaded = LoadedPage(image_id, Path(path))
        began = start = time.perf_counter()
        try:
            loaded.image = load_page(Path(path), self.max_pixels)
            loaded.load_ms = (time.perf_counter() - start) * 1000.0
            start = time.perf_counter()
            loaded.inputs = page_inputs(self.adapter, loaded.image, self.preprocess)
            end = time.perf_counter()
            loaded.preprocess_ms = (end - start) * 1000.0
            loaded.host_span_s = [began, end]
        except (ImageLoadError, OSError, ValueError) as error:
            loaded.error = error_reason(error)
        return loaded


def _as_is(page: LoadedPage) -> LoadedPage:
    """The DataLoader's conversion of one sample: none."""
    return page


def loaded_pages(
    adapter: ModelAdapter,
    images: Sequence[tuple[str, Path]],
    max_pixels: int,
    workers: int,
    preprocess: str = "cpu",
) -> Iterator[LoadedPage]:
    """Every page of `images` in order, loaded and preprocessed (`page_inputs`) inline
    (`workers` 0) or by `workers` processes running ahead; each with the time the caller
    waited for it."""
    pages = _Pages(adapter, images, max_pixels, preprocess)
    source: Iterator[LoadedPage]
    if workers == 0:
        source = (pages[index] for index in range(len(pages)))
    else:
        source = iter(
            DataLoader(
                pages,
                batch_size=None,
                num_workers=workers,
                collate_fn=_as_is,
                prefetch_factor=PREFETCH_PER_WORKER,
                multiprocessing_context="fork",
            )
        )
    while True:
        start = time.perf_counter()
        try:
            page = next(source)
        except StopIteration:
            return
        end = time.perf_counter()
        page.input_wait_ms = (end - start) * 1000.0
        page.wait_span_s = [start, end]
        yield page

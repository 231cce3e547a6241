"""Pages loaded and preprocessed for the timing pass: inline, or by worker processes that run
ahead of the GPU.

Inline (workers 0, the released flow) the GPU waits for each page's load and preprocessing.
With workers, torch's DataLoader forks processes that load and preprocess the next pages
while the current ones run, so a page's host time overlaps other pages' GPU time; what the
timing pass still waits for is measured as `input_wait_ms`. Workers are forked after the
model is built and never touch the GPU (CPU preprocessing only).

For the next batch to be ready when the GPU finishes the current one, the workers together
keep a whole batch in flight (`prefetch_per_worker`). On a CUDA device the DataLoader pins
each page (page-locked memory), and a thread of the timing process copies it to the device
with non-blocking copies on a stream of its own, up to a batch ahead, while the GPU runs
the current batch; the timing pass waits only for a copy that has not finished.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vlmprof.data.image_loader import ImageLoadError, load_page
from vlmprof.models.base import ModelAdapter, ModelInputs

# Pages each worker keeps ready ahead of the timing pass, at least.
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

    def pin_memory(self) -> LoadedPage:
        """The page with its inputs in page-locked memory (called by the DataLoader's pinning
        thread), so the copy to the device needs no staging copy on the host."""
        if self.inputs is None:
            return self
        return replace(self, inputs=self.inputs.pin_memory())


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


def prefetch_per_worker(batch_size: int, workers: int) -> int:
    """Pages each of `workers` processes keeps in flight: together at least a whole batch
    of `batch_size`, so the next batch is loaded while the GPU runs the current one."""
    return max(PREFETCH_PER_WORKER, math.ceil(batch_size / workers))


def loaded_pages(
    adapter: ModelAdapter,
    images: Sequence[tuple[str, Path]],
    max_pixels: int,
    workers: int,
    preprocess: str = "cpu",
    batch_size: int = 1,
) -> Iterator[LoadedPage]:
    """Every page of `images` in order, loaded and preprocessed (`page_inputs`) inline
    (`workers` 0) or by `workers` processes running a batch of `batch_size` ahead (on a
    CUDA device, pinned and copied to it ahead too); each with the time the caller waited
    for it."""
    pages = _Pages(adapter, images, max_pixels, preprocess)
    source: Iterator[LoadedPage]
    if workers == 0:
        source = (pages[index] for index in range(len(pages)))
    else:
        on_cuda = adapter.device.type == "cuda"
        source = iter(
            DataLoader(
                pages,
                batch_size=None,
                num_workers=workers,
                collate_fn=_as_is,
                prefetch_factor=prefetch_per_worker(batch_size, workers),
                multiprocessing_context="fork",
                pin_memory=on_cuda,
            )
        )
        if on_cuda:
            source = on_device(source, adapter.device, adapter.dtype, ahead=batch_size)
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


def on_device(
    pages: Iterator[LoadedPage], device: torch.device, dtype: torch.dtype, ahead: int
) -> Iterator[LoadedPage]:
    """`pages` (pinned) with their inputs on `device`, in order: a thread copies each with
    non-blocking copies on a stream of its own, at most `ahead` pages ahead of the caller,
    who waits only for a copy still running. The caller's stream is recorded on every
    tensor, so the allocator keeps a page's memory until the caller's work on it is done."""
    copies = torch.cuda.Stream(device)
    ready: queue.Queue[tuple[LoadedPage, torch.cuda.Event] | BaseException | None] = (
        queue.Queue(maxsize=max(ahead, 1))
    )

    def copy_ahead() -> None:
        try:
            with torch.cuda.stream(copies):
                for page in pages:
                    if page.inputs is not None:
                        page.inputs = page.inputs.to(device, dtype, non_blocking=True)
                    copied = torch.cuda.Event()
                    copied.record(copies)
                    ready.put((page, copied))
        except BaseException as error:  # handed to the caller, who raises it
            ready.put(error)
            return
        ready.put(None)

    threading.Thread(target=copy_ahead, name="pages-to-device", daemon=True).start()
    consumer = torch.cuda.current_stream(device)
    while (item := ready.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        page, copied = item
        copied.synchronize()
        if page.inputs is not None:
            for tensor in page.inputs.tensors():
                tensor.record_stream(consumer)
        yield page

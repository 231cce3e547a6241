"""The timing pass of one shard as a scenario: the model built once, then, batch by batch,

- warm: the shard's warm-up (on its first batch) and the pages' untimed facts;
- reference: the batch's untimed reference generation, which the correctness gate compares
  (fed the baseline's tokens for a gated arm); before the repeats it doubles as the batch's
  warm-up (`warmup_per_image`), else it follows them;
- repeat: the timed runs, each page up to its own length;
- emit: one record per page and repeat, errors, progress.

A page that cannot be read, or a run that fails (out of memory included), becomes a
`status: error` record with a one-line reason and the shard goes on. Records stream into a
temporary file that is renamed over the output only when the shard is complete. A shard in
which no run succeeded then fails with its first error, so the run never goes on to
aggregate nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO

import torch
from PIL import Image

from vlmprof.atomic import atomic_open
from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.placement import Placement
from vlmprof.progress import Progress
from vlmprof.records import RunRecord, did_not_fit
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.output_length import PageLengths
from vlmprof.runtime.page_source import LoadedPage, error_reason, loaded_pages
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.telemetry import TelemetrySampler
from vlmprof.runtime.timed_run import telemetry_sampler, timed_run
from vlmprof.runtime.untimed_runs import batch_reference_outputs, free_memory, warm_up

log = logging.getLogger(__name__)

WARMUP_PAGE_SIZE = (1240, 1754)  # A4 portrait at 150 dpi
# Record fields measured once per page (on its first repeat), cleared on the others.
ONCE_PER_PAGE: dict[str, None] = dict.fromkeys(
    ("load_ms", "preprocess_ms", "input_wait_ms", "host_span_s", "wait_span_s", "warmup_ms")
)
# What a page's untimed run adds to its records (its counted work, say).
PageFacts = Callable[[ModelAdapter, ModelInputs], dict[str, object]]
Saved = Mapping[str, torch.Tensor]


class ShardFailedError(RuntimeError):
    """Every run of a shard failed; the message names the shard and its first error."""


@dataclass
class _Page:
    """A readable page of a batch: what its records share, its facts, inputs and image."""

    common: dict[str, object]
    facts: dict[str, object]
    inputs: ModelInputs
    image: Image.Image


@dataclass
class _Batch:
    """Pages generated together, each up to its length; the baseline's outputs to feed
    them (a gated arm's, when the baseline has every page), and how progress names them."""

    pages: list[_Page]
    lengths: list[int]
    against: list[Saved] | None
    label: str

    @property
    def ids(self) -> list[str]:
        return [str(page.common["image_id"]) for page in self.pages]

    @property
    def inputs(self) -> list[ModelInputs]:
        return [page.inputs for page in self.pages]


def _facts_of_repeat(facts: dict[str, object], repeat: int) -> dict[str, object]:
    """A page's facts for one repeat's record: loading, preprocessing (and the shard's
    warm-up) happen once per page, so only repeat 0 keeps them."""
    return facts if repeat == 0 else {**facts, **ONCE_PER_PAGE}


class _Emit:
    """Where a shard's records go, as JSON lines into `handle` (and kept), with its log
    lines and progress."""

    def __init__(
        self,
        handle: IO[str],
        placement: Placement,
        settings: ProfileSettings,
        total: int,
        label: str,
    ) -> None:
        self.handle, self.settings, self.total, self.label = handle, settings, total, label
        self.base = {"device": placement.device, "dtype": placement.dtype, "placement": placement}
        self.progress = Progress(label, total * settings.repeats)
        self.records: list[RunRecord] = []

    def record(self, record: RunRecord) -> None:
        """Keep `record` and write it at once (a shard cut short keeps what it ran)."""
        self.records.append(record)
        self.handle.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
        self.handle.flush()

    def error(
        self, common: dict[str, object], facts: dict[str, object], repeat: int, reason: str
    ) -> RunRecord:
        """The error record of one repeat of a page."""
        once = _facts_of_repeat(facts, repeat)
        return RunRecord(**common, repeat=repeat, status="error", error=reason, **once, **self.base)

    def errors(self, common: dict[str, object], facts: dict[str, object], reason: str) -> None:
        """An error record for every repeat of a page."""
        for repeat in range(self.settings.repeats):
            self.record(self.error(common, facts, repeat, reason))

    def unreadable(self, loaded: LoadedPage, common: dict[str, object], label: str) -> None:
        """A page that could not be read: its error records, its repeats counted done."""
        log.warning("image %s (%s) skipped: %s", loaded.image_id, loaded.path, loaded.error)
        self.errors(common, {}, str(loaded.error))
        self.progress.step(f"{label} unreadable", self.settings.repeats)

    def failed(self, batch: _Batch, reason: str) -> None:
        """A batch that failed before its repeats: every repeat of its pages an error."""
        log.warning("%s failed in warm-up: %s", batch.label, reason)
        for page in batch.pages:
            self.errors(page.common, page.facts, reason)
        self.progress.step(f"{batch.label} failed", self.settings.repeats * len(batch.pages))

    def repeat(
        self, batch: _Batch, repeat: int, timing: dict[str, object], failure: str | None
    ) -> None:
        """One repeat of a batch: a record per page, its timing (each page's own tokens)
        or its failure."""
        for number, page in enumerate(batch.pages):
            if failure is None:
                facts = _facts_of_repeat(page.facts, repeat)
                tokens = timing["tokens"]
                assert isinstance(tokens, list)
                own = {**timing, "tokens": tokens[number]}
                record = RunRecord(**page.common, repeat=repeat, **facts, **own, **self.base)
            else:
                record = self.error(page.common, page.facts, repeat, failure)
            self.record(record)
        log.info(
            "shard %d %s repeat %d/%d: %s",
            self.settings.shard,
            batch.label,
            repeat + 1,
            self.settings.repeats,
            "error: " + str(record.error)
            if record.status == "error"
            else f"prefill {record.prefill_ms:.1f} ms, decode {record.decode_ms:.1f} ms",
        )
        self.progress.step(
            f"{batch.label} repeat {repeat + 1}/{self.settings.repeats}", len(batch.pages)
        )


def _page(loaded: LoadedPage, common: dict[str, object]) -> _Page:
    """A readable page with the facts its records keep."""
    assert loaded.inputs is not None and loaded.image is not None
    facts: dict[str, object] = {
        "mode": loaded.inputs.mode,
        "n_crops": loaded.inputs.n_crops,
        "image_tokens": loaded.inputs.image_tokens,
        "prefill_len": loaded.inputs.prefill_len,
        "load_ms": loaded.load_ms,
        "preprocess_ms": loaded.preprocess_ms,
        "input_wait_ms": loaded.input_wait_ms,
        "host_span_s": loaded.host_span_s,
        "wait_span_s": loaded.wait_span_s,
    }
    return _Page(common, facts, loaded.inputs, loaded.image)


def _batches(
    source: Iterator[LoadedPage],
    settings: ProfileSettings,
    lengths: PageLengths,
    against: Mapping[str, Saved] | None,
    emit: _Emit,
) -> Iterator[_Batch]:
    """The shard's pages in batches of `settings.batch_size`, each page with its length;
    a page that cannot be read is emitted as errors and left out of its batch."""
    total, size = emit.total, settings.batch_size
    for first in range(0, total, size):
        pages: list[_Page] = []
        for index, loaded in enumerate(islice(source, size), first):
            common: dict[str, object] = {
                "run_id": settings.run_id,
                "image_id": loaded.image_id,
                "shard": settings.shard,
                "target_tokens": lengths.tokens[loaded.image_id],
                "target_source": lengths.source,
            }
            if loaded.error is not None:
                emit.unreadable(loaded, common, f"page {index + 1}/{total} ({loaded.image_id})")
            else:
                pages.append(_page(loaded, common))
        if not pages:
            continue
        for page in pages:
            page.common.update(batch_size=len(pages), batch=first // size)
        ids = [str(page.common["image_id"]) for page in pages]
        label = f"page {first + 1}/{total} ({ids[0]})"
        if len(pages) > 1:
            label = f"pages {first + 1}-{first + len(pages)}/{total}"
        fed = None
        if against is not None and all(image in against for image in ids):
            fed = [against[image] for image in ids]
        yield _Batch(pages, [lengths.tokens[image] for image in ids], fed, label)


class _Shard:
    """The scenario's steps over one shard's batches, and what they share: the model, the
    run's settings, the sampler, the emitter, whether the shard is warm, which run keeps
    its sample series, and the reference outputs kept for the gate."""

    def __init__(
        self,
        adapter: ModelAdapter,
        settings: ProfileSettings,
        emit: _Emit,
        sampler: TelemetrySampler,
        page_facts: PageFacts | None,
        keep_outputs: bool,
    ) -> None:
        self.adapter, self.settings, self.emit, self.sampler = adapter, settings, emit, sampler
        self.page_facts, self.keep_outputs = page_facts, keep_outputs
        self.nvtx = NvtxRanges(enabled=settings.nvtx)
        self.warmed = self.series_kept = False
        self.outputs: dict[str, dict[str, torch.Tensor]] = {}

    def run(self, batch: _Batch) -> None:
        """Warm (with the reference run where it doubles as the warm-up), then repeat; then
        the reference run where it did not warm the batch."""
        failure = self._attempt(lambda: self.warm(batch))
        if failure is not None:
            # The batch fails in its warm-up (out of memory, say): every repeat would too.
            self.emit.failed(batch, failure)
            return
        for repeat in range(self.settings.repeats):
            self.repeat(batch, repeat)
        if self.keep_outputs and batch.ids[0] not in self.outputs:
            # Without a per-image warm-up the reference run comes after the repeats, so it
            # cannot warm them.
            failure = self._attempt(lambda: self.reference(batch))
            if failure is not None:
                log.warning("%s: no reference output: %s", batch.label, failure)

    def warm(self, batch: _Batch) -> None:
        """The shard's warm-up on its first batch (its time on the first page's record),
        the batch's reference run where it is the batch's warm-up, and the pages' facts
        from an untimed run of each."""
        settings = self.settings
        if not self.warmed:
            start = time.perf_counter()
            warm_pages = [Image.new("RGB", WARMUP_PAGE_SIZE, "white")]
            pages = warm_pages if settings.warmup_synthetic else [p.image for p in batch.pages]
            size, rounds = len(batch.pages), settings.warmup_rounds
            warm_up(self.adapter, pages, rounds, settings.max_new_tokens, size, settings.preprocess)
            batch.pages[0].facts["warmup_ms"] = (time.perf_counter() - start) * 1000.0
            self.warmed = True
        if settings.warmup_per_image:
            self.reference(batch)
        if self.page_facts is not None:
            for page in batch.pages:
                placed = page.inputs.to(self.adapter.device, self.adapter.dtype)
                page.facts.update(self.page_facts(self.adapter, placed))

    def reference(self, batch: _Batch) -> None:
        """The batch's untimed reference generation, kept by image id for the gate: fed
        the baseline's tokens (as long as the baseline's pages) for a gated arm, else each
        page up to its length."""
        outputs = batch_reference_outputs(
            self.adapter, batch.inputs, self.settings, batch.against, batch.lengths
        )
        self.outputs.update(zip(batch.ids, outputs, strict=True))

    def repeat(self, batch: _Batch, repeat: int) -> None:
        """One timed run of the batch, emitted as its pages' records."""
        # One run keeps its sample series, for the report's timeline: the last repeat of
        # the shard's first batch that runs, its warmest.
        keep = not self.series_kept and repeat == self.settings.repeats - 1
        timing: dict[str, object] = {}

        def run() -> None:
            inputs = [item.to(self.adapter.device, self.adapter.dtype) for item in batch.inputs]
            args = (self.settings, self.nvtx, self.sampler, keep, batch.lengths)
            timing.update(timed_run(self.adapter, inputs, *args))

        failure = self._attempt(run)
        self.series_kept = self.series_kept or (keep and timing.get("telemetry") is not None)
        self.emit.repeat(batch, repeat, timing, failure)

    def _attempt(self, step: Callable[[], None]) -> str | None:
        """Run `step`: None, or the one-line reason it failed (out of memory, say) once the
        failed run's memory is freed."""
        failure = None
        try:
            step()
        except (torch.OutOfMemoryError, RuntimeError) as error:
            failure = error_reason(error)
        if failure is not None:
            free_memory(self.adapter.device)  # after the except clause (see free_memory)
        return failure


def profile_images(
    adapter: ModelAdapter,
    placement: Placement,
    images: Sequence[tuple[str, Path]],
    settings: ProfileSettings,
    out_path: Path,
    outputs_path: Path | None = None,
    progress_label: str | None = None,
    page_facts: PageFacts | None = None,
    against: Mapping[str, Saved] | None = None,
    lengths: PageLengths | None = None,
) -> list[RunRecord]:
    """Profile `images` ((image_id, path) pairs) on `adapter`, built at `placement` (which
    every record keeps), and write their records to `out_path`.

    Pages run `settings.batch_size` at a time, loaded by `settings.workers` processes and
    preprocessed where `settings.preprocess` says, each up to its length (`lengths`; default
    `settings.output_length`'s, which `dataset` lengths cannot be without the pages' text):
    each page keeps its own record, with its batch's stage times (what the page waited), the
    batch's size, index and decode slot-steps. With `outputs_path`, each page's untimed
    reference generation (tokens, first-step logits, per-step top-k) is saved there for the
    gate, keyed by image_id; with `against` (the baseline's saved outputs by image_id) it is
    fed the baseline's tokens (a batch with a page the baseline lacks runs freely). Progress
    goes to standard error under `progress_label` (default "profile shard <shard>").
    `page_facts` adds what it finds in an untimed run of each page to its records.

    When no run succeeded, the records are still written, then a ShardFailedError names the
    first page's error (unless every run ran out of memory: a batch too large to fit is a
    finding, and the run goes on).
    """
    if lengths is None:
        ids = [image_id for image_id, _ in images]
        lengths = settings.output_length.page_lengths(ids, settings.max_new_tokens)
    label = progress_label or f"profile shard {settings.shard}"
    with atomic_open(out_path) as handle, telemetry_sampler(placement, settings) as sampler:
        emit = _Emit(handle, placement, settings, len(images), label)
        shard = _Shard(adapter, settings, emit, sampler, page_facts, outputs_path is not None)
        source = loaded_pages(
            adapter, images, settings.max_pixels, settings.workers, settings.preprocess,
            settings.batch_size,
        )
        for batch in _batches(source, settings, lengths, against, emit):
            shard.run(batch)
        if outputs_path is not None:
            with atomic_open(outputs_path, "wb") as outputs_handle:
                torch.save(shard.outputs, outputs_handle)
    check_some_ok(emit.records, label)
    return emit.records


def check_some_ok(records: Sequence[RunRecord], label: str) -> None:
    """Raise a ShardFailedError naming `label` and the first error when no record is ok.

    A shard without pages (more shards than pages) has no records and passes, and so does
    one whose every run ran out of memory: the records say the batch does not fit, which
    is what a batch-size sweep measures.
    """
    if not records or any(record.status == "ok" for record in records):
        return
    if all(did_not_fit(record.error) for record in records):
        log.warning("%s: every run ran out of memory; its records say so", label)
        return
    first = records[0]
    pages = len({record.image_id for record in records})
    raise ShardFailedError(
        f"{label}: no run succeeded ({pages} pages, {len(records)} runs); "
        f"first error, page {first.image_id}: {first.error}"
    )

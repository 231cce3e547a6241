"""Pages loaded and preprocessed by worker processes ahead of the timing pass: the same
records and reference outputs as inline, how long the pass still waited, and unreadable
pages recorded as inline."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.workflow_helpers import default_settings
from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.device import resolve_placement
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.base import ModelAdapter, ModelInputs
from vlmprof.records import read_run_records
from vlmprof.report import figures
from vlmprof.report.timing import batch_timeline
from vlmprof.runtime.page_source import LoadedPage, loaded_pages
from vlmprof.runtime.profile_shard import profile_images
from vlmprof.variants.switches import VariantError, check_variant, check_workers

PLACEMENT = resolve_placement("cpu", "float32")
TOKENS = 4
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    """Three pages of different sizes and, second, a file that is no image."""
    folder = tmp_path_factory.mktemp("pages")
    images = []
    for index, size in enumerate((PAGE_SIZES[0], PAGE_SIZES[3], PAGE_SIZES[5])):
        path = folder / f"page-{index}.png"
        render_page("text_heavy", size, 0, index).save(path)
        images.append((f"page-{index}", path))
    broken = folder / "broken.png"
    broken.write_bytes(b"not an image")
    images.insert(1, ("broken", broken))
    return images


def test_workers_hand_over_the_inline_pages_in_order(images: list[tuple[str, Path]]):
    adapter = build_adapter(ModelSpec(preset="small"))
    inline = list(loaded_pages(adapter, images, 10**8, 0))
    ahead = list(loaded_pages(adapter, images, 10**8, 2))
    assert [p.image_id for p in ahead] == [image_id for image_id, _ in images]
    for mine, theirs in zip(inline, ahead, strict=True):
        assert (mine.error is None) == (theirs.error is None)
        if mine.error is None:
            assert torch.equal(mine.inputs.input_ids, theirs.inputs.input_ids)
            for view, pixels in mine.inputs.pixel_views.items():
                assert torch.equal(pixels, theirs.inputs.pixel_views[view]), view
            assert theirs.load_ms > 0 and theirs.preprocess_ms > 0
        assert theirs.input_wait_ms >= 0
    assert ahead[1].error.startswith("ImageLoadError")
    # Inline, the pass waits for the whole load and preprocessing of each page.
    assert all(p.input_wait_ms >= p.load_ms + p.preprocess_ms for p in inline if p.error is None)


def test_a_workers_run_times_the_same_pages_and_keeps_how_long_it_waited(
    images: list[tuple[str, Path]], tmp_path: Path
):
    settings = default_settings(run_id="workers", repeats=2, max_new_tokens=TOKENS)
    # Tiny mode (one 512 view per page) keeps the two runs short.
    runs = {}
    adapter = build_adapter(ModelSpec(preset="small", mode="tiny"))
    for workers in (0, 2):
        out, outputs = tmp_path / f"{workers}.jsonl", tmp_path / f"{workers}.pt"
        run = dataclasses.replace(settings, workers=workers)
        profile_images(adapter, PLACEMENT, images, run, out, outputs)
        runs[workers] = ([json.loads(line) for line in out.read_text().splitlines()], outputs)
    (inline, inline_outputs), (ahead, ahead_outputs) = runs[0], runs[2]
    assert [(r["image_id"], r["repeat"], r["status"]) for r in ahead] == [
        (r["image_id"], r["repeat"], r["status"]) for r in inline
    ]
    first_repeats = [r for r in ahead if r["status"] == "ok" and r["repeat"] == 0]
    assert len(first_repeats) == 3 and all(r["input_wait_ms"] >= 0 for r in first_repeats)
    assert all(r["input_wait_ms"] is None for r in ahead if r["repeat"] == 1)
    mine, theirs = torch.load(inline_outputs), torch.load(ahead_outputs)
    assert set(mine) == set(theirs) == {"page-0", "page-1", "page-2"}
    for image_id in mine:
        assert torch.equal(mine[image_id]["tokens"], theirs[image_id]["tokens"])


def test_workers_are_refused_with_preprocessing_on_the_gpu():
    base = dataclasses.asdict(ModelSpec(preset="small", device="cuda"))
    check_variant("ahead", base, {"workers": 4})
    with pytest.raises(VariantError, match=r"^variants.ahead.workers: 4 worker processes"):
        check_variant("ahead", base, {"workers": 4, "preprocess": "gpu"})
    with pytest.raises(VariantError, match=r"^workers: 2 .* use workers: 0 with preprocess"):
        check_workers({**base, "workers": 2, "preprocess": "gpu"}, "workers")


def test_one_batchs_host_and_gpu_sides_line_up_on_the_host_clock(
    images: list[tuple[str, Path]], tmp_path: Path
):
    adapter = build_adapter(ModelSpec(preset="small", mode="tiny"))
    settings = default_settings(
        run_id="timeline", repeats=1, max_new_tokens=TOKENS, batch_size=2, workers=2
    )
    out = tmp_path / "records.jsonl"
    profile_images(adapter, PLACEMENT, images, settings, out)
    records = read_run_records([out])
    timeline = batch_timeline(records)
    # The last batch of two readable pages: the broken page left pages 1 and 2 together.
    pages = {"page-1", "page-2"}
    load = timeline[timeline["lane"] == "host: load"].set_index("span")
    host = timeline[timeline["lane"] == "host: preprocess"].set_index("span")
    assert set(load.index) == set(host.index) == pages
    # Each page's preprocessing starts where its load ends, its load_ms later.
    for page in pages:
        record = next(r for r in records if r.image_id == page and r.repeat == 0)
        assert load.loc[page, "end (ms)"] == host.loc[page, "start (ms)"]
        assert load.loc[page, "end (ms)"] - load.loc[page, "start (ms)"] == pytest.approx(
            record.load_ms
        )
    assert set(timeline[timeline["lane"] == "timing pass: waits for the page"]["span"]) == pages
    gpu = timeline[timeline["lane"] == "GPU: the batch"].set_index("span")
    assert list(gpu.index) == ["prefill", "decode"]
    # Loading came before the batch's run, prefill before decode, all from the first span.
    assert timeline["start (ms)"].min() == 0.0
    assert host["end (ms)"].max() <= gpu.loc["prefill", "start (ms)"]
    assert gpu.loc["prefill", "end (ms)"] <= gpu.loc["decode", "start (ms)"] + 1e-6
    run = next(r for r in records if r.image_id == "page-1")
    assert gpu.loc["decode", "end (ms)"] - gpu.loc["prefill", "start (ms)"] == pytest.approx(
        (run.run_span_s[1] - run.run_span_s[0]) * 1000.0
    )
    ax = figures.batch_timeline_figure(timeline).axes[0]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == list(
        dict.fromkeys(timeline["lane"])
    )
    # Every arm's panel draws the same lanes, under its title.
    arms = figures.arm_timelines_figure({"a": timeline, "b": timeline}, {"a": "a: batch of 2"})
    assert [ax.get_title(loc="left") for ax in arms.axes] == ["a: batch of 2", "b"]
    # Records from before spans were kept give no timeline, not an error.
    assert batch_timeline([dataclasses.replace(r, host_span_s=None) for r in records]).empty


def slow_to_preprocess(seconds: float) -> ModelAdapter:
    """The small model in tiny mode whose preprocessing of a page takes `seconds` longer (a
    sleep: the host's time, without using a core the test machine may not have spare)."""
    adapter = build_adapter(ModelSpec(preset="small", mode="tiny"))
    released = adapter.preprocess

    def slow(image: Image.Image) -> ModelInputs:
        time.sleep(seconds)
        return released(image)

    adapter.preprocess = slow  # the forked workers inherit it
    return adapter


def test_workers_have_the_next_batch_ready_when_the_gpu_finishes_the_current_one(
    images: list[tuple[str, Path]],
):
    # Two workers, batches of 8 pages, each page 0.25 s to preprocess: the next batch takes
    # them 1 s, while the GPU (here a sleep) takes 2 s over the current one. With only two
    # pages in flight per worker, half the next batch would still be waiting to start.
    page = 0.25
    readable = [item for item in images if item[0] != "broken"]
    pages = [(f"{image_id}-{n}", path) for n in range(6) for image_id, path in readable][:16]
    source = loaded_pages(slow_to_preprocess(page), pages, 10**8, workers=2, batch_size=8)
    first = [next(source) for _ in range(8)]
    time.sleep(2.0)  # the GPU runs the first batch
    second = list(source)
    assert [p.image_id for p in first + second] == [image_id for image_id, _ in pages]
    assert all(p.error is None for p in first + second)
    assert all(p.preprocess_ms >= 1000 * page for p in first + second)
    waited = sum(p.input_wait_ms for p in second)
    assert waited < 1000 * page, f"the second batch waited {waited:.0f} ms for its pages"


@needs_cuda
def test_pages_reach_the_gpu_pinned_in_order_and_equal_to_inline(
    images: list[tuple[str, Path]],
):
    adapter = build_adapter(ModelSpec(preset="small", mode="tiny", device="cuda"))
    inline = list(loaded_pages(adapter, images, 10**8, 0))
    loaded = inline[0]
    pinned = loaded.pin_memory()
    assert all(tensor.is_pinned() for tensor in pinned.inputs.tensors())
    assert LoadedPage("x", Path("x")).pin_memory().inputs is None
    ahead = list(loaded_pages(adapter, images, 10**8, 2, batch_size=2))
    assert [p.image_id for p in ahead] == [image_id for image_id, _ in images]
    for mine, theirs in zip(inline, ahead, strict=True):
        assert (mine.error is None) == (theirs.error is None)
        if mine.error is None:
            expected = mine.inputs.to(adapter.device, adapter.dtype)
            for want, got in zip(expected.tensors(), theirs.inputs.tensors(), strict=True):
                assert got.device == adapter.device
                assert torch.equal(want, got)

"""Faults inside a timing pass: one page out of memory or unreadable, the job interrupted, or
every page failing.

The model is the real small-preset adapter; only the fault is injected, by a test subclass
that raises where a real run would (out of memory in the prefill, a Ctrl-C mid-shard).
"""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from tests.workflow_helpers import default_settings
from vlmprof.data.manifest import load_manifest
from vlmprof.data.synthetic_pages import generate_synthetic_pages
from vlmprof.device import resolve_placement
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.base import DecodeState, ModelInputs
from vlmprof.models.deepseek_ocr.adapter import DeepseekOcrAdapter
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.profile_shard import ShardFailedError, profile_images

REPEATS = 2
# Where the adapter below runs: the default spec's device and dtype.
PLACEMENT = resolve_placement("cpu", "float32")
MAX_NEW_TOKENS = 3
OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.19 GiB\n"
    "If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"
)


class FaultOnPage(DeepseekOcrAdapter):
    """The real adapter, except that every prefill of one page (known by size) fails.

    Pages are told apart by the size of the image last preprocessed: the timing pass
    preprocesses a page before its warm-up and timed runs, so that is the page being run.
    """

    def __init__(
        self, real: DeepseekOcrAdapter, size: tuple[int, int], fault: type[BaseException]
    ) -> None:
        super().__init__(real.spec, real.dims, real.module)
        self.size, self.fault = size, fault
        self.current: tuple[int, int] | None = None
        self.prefills: list[tuple[int, int] | None] = []
        self.failed_runs: list[weakref.ref[torch.Tensor]] = []

    def preprocess(self, image: Image.Image) -> ModelInputs:
        self.current = image.size
        return super().preprocess(image)

    def prefill_batch(
        self, batch: Sequence[ModelInputs], new_tokens: int
    ) -> tuple[torch.Tensor, DecodeState]:
        self.prefills.append(self.current)
        if self.current == self.size:
            # What a run holds when it fails: freeing memory must release it.
            activations = torch.empty(1024, 1024)
            self.failed_runs.append(weakref.ref(activations))
            raise self.fault(OOM_MESSAGE)
        return super().prefill_batch(batch, new_tokens)


class InterruptOnPage(FaultOnPage):
    """Ctrl-C in the prefill of one page, noting what the shard had written by then."""

    def __init__(self, real: DeepseekOcrAdapter, size: tuple[int, int], out_dir: Path) -> None:
        super().__init__(real, size, KeyboardInterrupt)
        self.out_dir = out_dir
        self.on_disk_at_interrupt: list[str] = []

    def prefill_batch(
        self, batch: Sequence[ModelInputs], new_tokens: int
    ) -> tuple[torch.Tensor, DecodeState]:
        if self.current == self.size:
            self.on_disk_at_interrupt = [p.read_text() for p in self.out_dir.iterdir()]
        return super().prefill_batch(batch, new_tokens)


@pytest.fixture(scope="module")
def adapter() -> DeepseekOcrAdapter:
    return build_adapter(ModelSpec(preset="small", mode="base"))


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Three generated pages of three different sizes."""
    manifest = generate_synthetic_pages(tmp_path_factory.mktemp("pages"), n_pages=3)
    frame = load_manifest(manifest)
    assert frame[["width", "height"]].drop_duplicates().shape[0] == 3
    return frame


def _size(page: pd.Series) -> tuple[int, int]:
    return int(page.width), int(page.height)


def _images(pages: pd.DataFrame) -> list[tuple[str, Path]]:
    return [(row.image_id, Path(row.path)) for row in pages.itertuples()]


def _settings(**changes: object) -> ProfileSettings:
    settings = {"run_id": "faults", "repeats": REPEATS, "max_new_tokens": MAX_NEW_TOKENS}
    return default_settings(**{**settings, "nvtx": False, **changes})


def _read_lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n"), "last record is cut off"
    return [json.loads(line) for line in text.splitlines()]


def _assert_complete_ok(record: dict) -> None:
    assert record["status"] == "ok" and record["error"] is None
    assert record["tokens"] == MAX_NEW_TOKENS
    assert len(record["decode_step_ms"]) == MAX_NEW_TOKENS - 1
    for field in ("prefill_ms", "decode_ms", "ttft_ms", "vision_ms", "sam_ms", "clip_ms"):
        assert record[field] > 0, field
    assert record["vision_ms"] <= record["prefill_ms"]


@pytest.mark.parametrize("warmup_per_image", [True, False], ids=["in-warm-up", "in-timed-run"])
def test_out_of_memory_on_one_page_is_recorded_and_the_shard_goes_on(
    adapter: DeepseekOcrAdapter, pages: pd.DataFrame, tmp_path: Path, warmup_per_image: bool
):
    failing = pages.iloc[1]
    faulty = FaultOnPage(adapter, _size(failing), torch.OutOfMemoryError)
    full_collections: list[tuple[int, bool]] = []

    def watch(phase: str, info: dict) -> None:
        # A full collection is what freeing memory does on CPU; note whether the last
        # failed run's tensors were already gone when it finished.
        if phase == "stop" and info["generation"] == 2 and faulty.failed_runs:
            last = len(faulty.failed_runs) - 1
            full_collections.append((last, faulty.failed_runs[last]() is not None))

    out = tmp_path / "shard-0.jsonl"
    gc.callbacks.append(watch)
    try:
        records = profile_images(
            faulty, PLACEMENT, _images(pages), _settings(warmup_per_image=warmup_per_image), out
        )
    finally:
        gc.callbacks.remove(watch)

    lines = _read_lines(out)
    assert lines == [record.to_dict() for record in records]
    assert [(r["image_id"], r["repeat"]) for r in lines] == [
        (image_id, repeat) for image_id in pages["image_id"] for repeat in range(REPEATS)
    ]
    for record in lines:
        if record["image_id"] == failing.image_id:
            assert record["status"] == "error"
            assert record["error"] == "OutOfMemoryError: " + OOM_MESSAGE.splitlines()[0]
            assert record["prefill_ms"] is None and record["decode_step_ms"] == []
        else:
            _assert_complete_ok(record)
    # The loop went on: the page after the failing one was run.
    assert faulty.prefills.index(_size(pages.iloc[2])) > faulty.prefills.index(faulty.size)
    # Memory was freed after each failure, once the failed run's tensors were released.
    assert faulty.failed_runs and all(ref() is None for ref in faulty.failed_runs)
    first_after = {}
    for failure, alive in full_collections:
        first_after.setdefault(failure, alive)
    assert first_after == dict.fromkeys(range(len(faulty.failed_runs)), False)


def test_empty_page_among_good_ones_gives_error_records(
    adapter: DeepseekOcrAdapter,
    pages: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    empty = tmp_path / "empty.png"
    empty.touch()
    images = _images(pages)
    images.insert(1, ("empty", empty))
    out = tmp_path / "shard-0.jsonl"
    profile_images(adapter, PLACEMENT, images, _settings(warmup_per_image=False), out)

    lines = _read_lines(out)
    assert len(lines) == len(images) * REPEATS
    bad = [r for r in lines if r["image_id"] == "empty"]
    assert [r["repeat"] for r in bad] == list(range(REPEATS))
    for record in bad:
        assert record["status"] == "error"
        assert record["error"].startswith("ImageLoadError: ") and "empty file" in record["error"]
        assert str(empty) in record["error"] and "\n" not in record["error"]
    for record in lines:
        if record["image_id"] != "empty":
            _assert_complete_ok(record)
    # Every record, the failed page's too, says where the shard ran.
    cpu = {"device": "cpu", "dtype": "float32", "gpu_index": None, "gpu_uuid": None}
    assert all(record["placement"] == PLACEMENT.to_dict() for record in lines)
    assert PLACEMENT.to_dict().items() >= (cpu | {"gpu_name": None}).items()
    assert {(record["device"], record["dtype"]) for record in lines} == {("cpu", "float32")}
    # Progress on standard error counts the failed page's repeats: the last line is written
    # at the last run, with nothing left.
    progress = capsys.readouterr().err.splitlines()
    assert progress[0].startswith(f"[profile shard 0] page 1/4 ({images[0][0]}) repeat 1/2: ")
    assert progress[-1].startswith(f"[profile shard 0] page 4/4 ({images[3][0]}) repeat 2/2: ")
    assert progress[-1].endswith(" elapsed, ~00:00 left")


def test_interrupted_shard_leaves_no_output_file(
    adapter: DeepseekOcrAdapter, pages: pd.DataFrame, tmp_path: Path
):
    out = tmp_path / "runs" / "shard-0.jsonl"
    faulty = InterruptOnPage(adapter, _size(pages.iloc[1]), out.parent)
    with pytest.raises(KeyboardInterrupt):
        profile_images(faulty, PLACEMENT, _images(pages), _settings(warmup_per_image=False), out)

    # At the interrupt the first page's records were on disk, in a temporary file only.
    assert [text.count("\n") for text in faulty.on_disk_at_interrupt] == [REPEATS]
    assert not out.exists()
    assert list(out.parent.iterdir()) == [], "a temporary file was left behind"


def test_shard_with_no_ok_run_fails_naming_its_first_error_after_writing_every_record(
    adapter: DeepseekOcrAdapter, pages: pd.DataFrame, tmp_path: Path
):
    empty = tmp_path / "empty.png"
    empty.touch()
    failing = pages.iloc[1]
    faulty = FaultOnPage(adapter, _size(failing), torch.OutOfMemoryError)
    images = [("empty", empty), (failing.image_id, Path(failing.path))]
    out = tmp_path / "runs" / "shard-3.jsonl"
    outputs = tmp_path / "runs" / "shard-3.outputs.pt"
    with pytest.raises(ShardFailedError) as raised:
        profile_images(
            faulty, PLACEMENT, images, _settings(shard=3, warmup_synthetic=False), out, outputs
        )

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("profile shard 3: no run succeeded (2 pages, 4 runs); ")
    assert f"first error, page empty: ImageLoadError: {empty}" in message
    assert "empty file" in message and "OutOfMemoryError" not in message
    # Every error was written, completely, before the failure; no temporary file is left.
    lines = _read_lines(out)
    assert [(r["image_id"], r["status"]) for r in lines] == [
        ("empty", "error"),
        ("empty", "error"),
        (failing.image_id, "error"),
        (failing.image_id, "error"),
    ]
    assert lines[2]["error"] == "OutOfMemoryError: " + OOM_MESSAGE.splitlines()[0]
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name, outputs.name]


def test_shard_with_one_ok_page_or_no_page_succeeds(
    adapter: DeepseekOcrAdapter, pages: pd.DataFrame, tmp_path: Path
):
    empty = tmp_path / "empty.png"
    empty.touch()
    good = pages.iloc[0]
    images = [("empty", empty), (good.image_id, Path(good.path))]
    records = profile_images(
        adapter, PLACEMENT, images, _settings(repeats=1), tmp_path / "mixed.jsonl"
    )
    assert [r.status for r in records] == ["error", "ok"]
    assert profile_images(adapter, PLACEMENT, [], _settings(), tmp_path / "none.jsonl") == []
    assert (tmp_path / "none.jsonl").read_text() == ""

"""Pages generated together: a left-padded batch gives each page its lone run's tokens, each
page stops at its own length (its slot idling until the batch's longest page ends, counted
exactly), every page of a batch keeps its own record, and a batch that runs out of memory is
recorded.

The model is the real small-preset DeepSeek-OCR on the CPU; pages of different sizes give
prompts of different lengths, so the batches really are padded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from tests.workflow_helpers import default_settings
from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.device import resolve_placement
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.base import DecodeState, ModelInputs
from vlmprof.models.deepseek_ocr.adapter import DeepseekOcrAdapter
from vlmprof.models.padded_batch import padded_attention
from vlmprof.runtime.generate import GenerationCapture, generate_batch, greedy_generate
from vlmprof.runtime.instruments import Instruments
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.output_length import OutputLength, PageLengths
from vlmprof.runtime.profile_shard import profile_images
from vlmprof.runtime.stage_timer import StageTimer
from vlmprof.runtime.untimed_runs import batch_reference_outputs
from vlmprof.variants.switches import VariantError, check_batch_size, check_variant

TOKENS = 6
# At most 2 crops a page where a test's adapter preprocesses its pages: pages of different
# sizes still make prompts of different lengths (a batch of them is padded), and the CPU
# spends less on the vision of crops. (max_crops acts in preprocessing only: the tests fed
# the `batch` fixture's inputs run them as the fixture made them.)
CROPS = 2
PLACEMENT = resolve_placement("cpu", "float32")
# An A4 page with six crops, a slide, a receipt and a small scan: four prompt lengths.
SIZES = (PAGE_SIZES[0], PAGE_SIZES[3], PAGE_SIZES[4], PAGE_SIZES[5])
INSTRUMENTS = Instruments(None, NvtxRanges(enabled=False))


@pytest.fixture(scope="module")
def batch() -> list[ModelInputs]:
    adapter = build_adapter(ModelSpec(preset="small"))
    pages = [render_page("mixed_layout", size, 0, index) for index, size in enumerate(SIZES)]
    return [adapter.preprocess(page) for page in pages]


def test_the_mask_hides_padding_keeps_causality_and_counts_positions_from_the_first_token():
    pads = torch.tensor([0, 2])
    mask, positions = padded_attention(pads, torch.arange(4), 4, torch.float32)
    allowed = (mask[:, 0] == 0).int().tolist()
    assert allowed[0] == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    # Padding queries see themselves only (no empty row); real ones skip the padding.
    assert allowed[1] == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]
    assert positions.tolist() == [[0, 1, 2, 3], [0, 0, 0, 1]]
    # A decode step: one query at cache slot 4 of a 6-slot static cache.
    mask, positions = padded_attention(pads, torch.tensor([4]), 6, torch.float32)
    assert (mask[:, 0, 0] == 0).int().tolist() == [[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 0]]
    assert positions.tolist() == [[4], [2]]


@pytest.mark.parametrize("decode", ["eager", "static"])
def test_pages_in_a_batch_of_four_get_their_lone_tokens(batch: list[ModelInputs], decode: str):
    adapter = build_adapter(ModelSpec(preset="small", decode=decode))
    assert len({inputs.prefill_len for inputs in batch}) == len(batch)
    alone = [greedy_generate(adapter, inputs, TOKENS, INSTRUMENTS) for inputs in batch]
    together = generate_batch(adapter, batch, [TOKENS] * len(batch), INSTRUMENTS).tokens
    assert [row.tolist() for row in together] == [row.tolist() for row in alone]


def test_teacher_forcing_feeds_another_runs_tokens_and_keeps_each_pages_length(
    batch: list[ModelInputs],
):
    adapter = build_adapter(ModelSpec(preset="small"))
    settings = default_settings(max_new_tokens=TOKENS)
    free = [batch_reference_outputs(adapter, [inputs], settings)[0] for inputs in batch[:2]]
    # Fed its own tokens, a run computes what it computed freely, step for step.
    again = batch_reference_outputs(adapter, batch[:2], settings, free)
    for alone, forced in zip(free, again, strict=True):
        assert torch.equal(forced["tokens"], alone["tokens"])
        assert torch.allclose(forced["probe_values"], alone["probe_values"], atol=1e-4)
    # Fed another token at step 2 (and a shorter second page), the steps up to 2 agree, the
    # next ones see that token, and each page keeps its own length.
    other = [dict(saved) for saved in free]
    other[0]["tokens"] = free[0]["tokens"].clone()
    other[0]["tokens"][2] = (free[0]["tokens"][2] + 1) % 4096
    other[1]["tokens"] = free[1]["tokens"][:3]
    forced = batch_reference_outputs(adapter, batch[:2], settings, other)
    assert [saved["probe_values"].shape[0] for saved in forced] == [TOKENS, 3]
    first, lone = forced[0]["probe_values"], free[0]["probe_values"]
    assert torch.allclose(first[:3], lone[:3], atol=1e-4)
    assert not torch.allclose(first[3], lone[3], atol=1e-4)


def test_a_page_that_ends_early_keeps_its_tokens_up_to_its_end(batch: list[ModelInputs]):
    adapter = build_adapter(ModelSpec(preset="small"))
    free = generate_batch(adapter, batch[:2], [TOKENS] * 2, INSTRUMENTS).tokens
    eos = int(free[0][2])  # the first page "ends" at its third token
    captures = [GenerationCapture(), GenerationCapture()]
    ended = generate_batch(adapter, batch[:2], [TOKENS] * 2, INSTRUMENTS, eos, captures).tokens
    first_end = free[0].tolist().index(eos)
    assert ended[0].tolist() == free[0].tolist()[: first_end + 1]
    second = free[1].tolist()
    assert ended[1].tolist() == second[: second.index(eos) + 1] if eos in second else second
    saved = captures[0].to_dict(ended[0])
    assert saved["top_indices"].shape[0] == ended[0].numel()


def test_pages_of_a_length_mix_stop_at_their_own_lengths(batch: list[ModelInputs]):
    adapter = build_adapter(ModelSpec(preset="small"))
    alone = [greedy_generate(adapter, inputs, TOKENS, INSTRUMENTS) for inputs in batch]
    assert greedy_generate(adapter, batch[0], 2, INSTRUMENTS).tolist() == alone[0][:2].tolist()
    lengths = [2, 5, 3, 4]  # the longest below TOKENS: the batch stops before it
    timer = StageTimer("cpu")
    run = generate_batch(adapter, batch, lengths, Instruments(timer, NvtxRanges(enabled=False)))
    expected = [lone[:length].tolist() for lone, length in zip(alone, lengths, strict=True)]
    assert [row.tolist() for row in run.tokens] == expected
    # The batch runs until its longest page ends: 4 decode steps of all 4 slots, of which
    # the first page's slot ran 3 after its end, the third's 2 and the fourth's 1.
    assert run.decode_steps == len(timer.finish()["decode_step"]) == 4
    assert (run.slot_steps, run.idle_slot_steps) == (16, 3 + 0 + 2 + 1)
    # A page ends at its length or at its end-of-sequence, whichever comes first; once
    # both pages have ended the batch stops.
    eos = int(alone[0][2])
    ended = generate_batch(adapter, batch[:2], [TOKENS, 2], INSTRUMENTS, eos)
    first = alone[0].tolist()
    assert ended.tokens[0].tolist() == first[: first.index(eos) + 1]
    assert len(ended.tokens[1]) <= 2
    assert ended.decode_steps == max(len(page) for page in ended.tokens) - 1
    with pytest.raises(ValueError, match="one of at least 1 token for each page"):
        generate_batch(adapter, batch[:2], [3], INSTRUMENTS)


def _pages(tmp_path: Path, count: int) -> list[tuple[str, Path]]:
    images = []
    for index in range(count):
        path = tmp_path / f"page-{index}.png"
        render_page("text_heavy", SIZES[index], 0, index).save(path)
        images.append((f"page-{index}", path))
    return images


def test_every_page_of_a_batch_keeps_its_record_with_the_batchs_times(tmp_path: Path):
    adapter = build_adapter(ModelSpec(preset="small", max_crops=CROPS))
    settings = default_settings(run_id="batched", repeats=2, max_new_tokens=TOKENS, batch_size=2)
    out, outputs = tmp_path / "records.jsonl", tmp_path / "outputs.pt"
    profile_images(adapter, PLACEMENT, _pages(tmp_path, 3), settings, out, outputs)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # Each repeat of a batch writes its pages' records together.
    assert [(r["image_id"], r["repeat"]) for r in lines] == [
        (f"page-{page}", repeat) for repeat in (0, 1) for page in (0, 1)
    ] + [("page-2", 0), ("page-2", 1)]
    assert all(r["status"] == "ok" and r["tokens"] == TOKENS for r in lines)
    assert [(r["batch_size"], r["batch"]) for r in lines] == [(2, 0)] * 4 + [(1, 1)] * 2
    first, second = lines[0], lines[1]  # repeat 0 of the two pages of batch 0
    for field in ("prefill_ms", "decode_ms", "vision_ms", "decode_step_ms"):
        assert first[field] == second[field], field
    assert first["prefill_len"] != second["prefill_len"]
    assert first["load_ms"] > 0 and second["load_ms"] > 0 and lines[2]["load_ms"] is None
    assert set(torch.load(outputs)) == {"page-0", "page-1", "page-2"}


def test_records_keep_each_pages_length_and_their_batchs_idle_slot_steps(tmp_path: Path):
    adapter = build_adapter(ModelSpec(preset="small", max_crops=CROPS))
    settings = default_settings(run_id="lengths", repeats=2, max_new_tokens=TOKENS, batch_size=2)
    lengths = PageLengths({"page-0": 2, "page-1": 6, "page-2": 4}, "given")
    out, outputs = tmp_path / "records.jsonl", tmp_path / "outputs.pt"
    pages = _pages(tmp_path, 3)
    profile_images(adapter, PLACEMENT, pages, settings, out, outputs, lengths=lengths)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["tokens"] == r["target_tokens"] == lengths.tokens[r["image_id"]] for r in lines)
    assert {r["target_source"] for r in lines} == {"given"}
    # Batch 0 (pages 0 and 1) runs 5 decode steps in 2 slots; page 0's slot idles 4 of them.
    # Batch 1 (page 2 alone) runs 3 steps, none idle.
    batch_steps = {(r["batch"], r["decode_slot_steps"], r["idle_slot_steps"]) for r in lines}
    assert batch_steps == {(0, 10, 4), (1, 3, 0)}
    assert all(len(r["decode_step_ms"]) == r["decode_slot_steps"] / r["batch_size"] for r in lines)
    # The gate's reference runs keep each page's own length.
    saved = torch.load(outputs)
    assert {image: len(saved[image]["tokens"]) for image in saved} == dict(lengths.tokens)
    # Without given lengths, the settings' output length sets them: a seeded draw per page.
    drawn = dataclasses.replace(settings, output_length=OutputLength("lognormal", 4.0, 0.8, 4))
    records = profile_images(adapter, PLACEMENT, pages, drawn, out)
    targets = drawn.output_length.page_lengths([image for image, _ in pages], TOKENS).tokens
    assert [r.tokens for r in records] == [targets[r.image_id] for r in records]
    assert len(set(targets.values())) > 1 and records[0].target_source.startswith("lognormal")


class OutOfMemoryInBatches(DeepseekOcrAdapter):
    """The real adapter, except that every batch of more than one page runs out of memory
    (as a batch too large for the GPU does)."""

    def __init__(self, real: DeepseekOcrAdapter) -> None:
        super().__init__(real.spec, real.dims, real.module)

    def prefill_batch(
        self, batch: Sequence[ModelInputs], new_tokens: int
    ) -> tuple[torch.Tensor, DecodeState]:
        if len(batch) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB.")
        return super().prefill_batch(batch, new_tokens)


def test_a_batch_too_large_to_fit_is_recorded_and_the_run_goes_on(tmp_path: Path):
    real = build_adapter(ModelSpec(preset="small", max_crops=CROPS))
    adapter = OutOfMemoryInBatches(real)
    settings = default_settings(run_id="too-big", repeats=2, max_new_tokens=TOKENS, batch_size=2)
    out = tmp_path / "records.jsonl"
    # Every run out of memory: recorded, and no ShardFailedError.
    records = profile_images(adapter, PLACEMENT, _pages(tmp_path, 2), settings, out)
    assert [r.status for r in records] == ["error"] * 4
    assert all(r.error.startswith("OutOfMemoryError: CUDA out of memory") for r in records)
    assert all(r.batch_size == 2 for r in records)
    # A last batch of one page fits and is timed beside the failed one.
    records = profile_images(adapter, PLACEMENT, _pages(tmp_path, 3), settings, out)
    assert [r.status for r in records] == ["error"] * 4 + ["ok"] * 2


def test_only_deepseek_ocrs_own_module_tree_batches_pages():
    base = dataclasses.asdict(ModelSpec(preset="small"))
    check_variant("batched", base, {"batch_size": 8})
    for changes, named in (
        ({"name": "deepseek_ocr2"}, "model deepseek_ocr2"),
        ({"checkpoint": "ckpt", "trust_remote_code": True}, "trust_remote_code"),
    ):
        with pytest.raises(VariantError, match=rf"variants.batched.batch_size: 8 pages .*{named}"):
            check_variant("batched", {**base, **changes}, {"batch_size": 8})
    with pytest.raises(VariantError, match=r"^batch_size: 4 pages at once .* use batch_size: 1"):
        check_batch_size({**base, "name": "deepseek_ocr2", "batch_size": 4}, "batch_size")
    lone = build_adapter(ModelSpec(name="deepseek_ocr2", preset="small"))
    with pytest.raises(NotImplementedError, match="deepseek_ocr2 prefills one page at a time"):
        lone.prefill_batch([None, None], 1)  # type: ignore[list-item]

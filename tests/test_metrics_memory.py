"""The memory and pipeline sections of metrics.json: each batch's KV cache from the model's
dims, the batch that did not fit, and which side, host or GPU, binds a run."""

from __future__ import annotations

import pytest

from tests.records import page_record
from vlmprof.metrics.document import Pipeline
from vlmprof.metrics.memory import memory_section
from vlmprof.metrics.pipeline import HOST_BOUND_WAIT, pipeline_section
from vlmprof.models import spec_dims
from vlmprof.records import OUT_OF_MEMORY
from vlmprof.report.timing import binding_sentence
from vlmprof.typed_json import read_as

A4, LETTER_SCAN = (1240, 1754), (640, 640)
GIB = 2**30


def batch(index: int, sizes, **values) -> list[dict]:
    """The first repeat's records of one batch of pages of `sizes` (ok, with `values`)."""
    return [
        page_record(f"b{index}-p{n}", size, shard=0, batch=index, batch_size=len(sizes), **values)
        for n, size in enumerate(sizes)
    ]


def test_the_kv_cache_of_full_deepseek_ocr_in_bfloat16():
    # DeepSeek-OCR's decoder: 12 layers of plain multi-head attention, 10 KV heads of 128.
    dims = spec_dims("deepseek_ocr", "full", {}, None)
    fits = batch(0, [A4, LETTER_SCAN], peak_mem_bytes={"run": 20 * GIB})
    longest = max(r["prefill_len"] for r in fits)
    assert longest > min(r["prefill_len"] for r in fits)  # padded to the longer page
    section = memory_section(fits, dims, "bfloat16", tokens=256)
    assert section["kv_bytes_per_token_per_layer"] == 2 * 10 * 128 * 2
    assert section["layers"] == 12
    (only,) = section["batches"]
    assert only["positions"] == longest + 256
    assert only["kv_cache_bytes"] == 2 * 10 * 128 * 2 * 12 * (longest + 256) * 2
    assert only["peak_bytes"] == 20 * GIB and only["fit"]
    assert section["kv_cache_bytes_max"] == only["kv_cache_bytes"]
    assert section["batches_did_not_fit"] == section["pages_did_not_fit"] == 0
    # float32 doubles it; a model without dims has no figure, and says why.
    doubled = memory_section(fits, dims, "float32", tokens=256)["kv_cache_bytes_max"]
    assert doubled == 2 * only["kv_cache_bytes"]
    counted = memory_section(fits, None, "bfloat16", tokens=256)
    assert counted["kv_cache_bytes_max"] is None and "no dimensions" in counted["reason"]


def test_a_batch_that_ran_out_of_memory_did_not_fit_and_keeps_what_it_needed():
    dims = spec_dims("deepseek_ocr", "full", {}, None)
    fits = batch(0, [A4], peak_mem_bytes={"run": 10 * GIB})
    error = f"{OUT_OF_MEMORY}: CUDA out of memory. Tried to allocate 2.00 GiB"
    too_big = batch(1, [A4, A4, A4], status="error", error=error)
    section = memory_section(fits + too_big, dims, "bfloat16", tokens=256)
    assert [b["fit"] for b in section["batches"]] == [True, False]
    assert section["batches_did_not_fit"] == 1 and section["pages_did_not_fit"] == 3
    needed = section["batches"][1]["kv_cache_bytes"]
    assert needed == 3 * section["batches"][0]["kv_cache_bytes"]
    # The extremes are over the batches that fit.
    assert section["kv_cache_bytes_max"] < needed
    assert section["peak_bytes_max"] == 10 * GIB
    # Another failure is no lack of memory.
    broken = batch(1, [A4], status="error", error="ImageLoadError: not an image")
    assert memory_section(fits + broken, dims, "bfloat16", 256)["batches_did_not_fit"] == 0


def two_batches(wait_ms: float, workers: int, host_ms: float = 80.0) -> dict:
    """The pipeline section of two batches of 4 pages, 1 s of GPU time each, each page
    `host_ms` of loading and preprocessing and `wait_ms` of waiting."""
    records = []
    for index in range(2):
        records += batch(
            index,
            [A4] * 4,
            prefill_ms=200.0,
            decode_ms=800.0,
            load_ms=20.0,
            preprocess_ms=host_ms - 20.0,
            input_wait_ms=wait_ms,
        )
    return pipeline_section(records, workers)


def test_the_gpu_waiting_for_its_inputs_makes_a_run_host_bound():
    inline = two_batches(wait_ms=80.0, workers=0)
    assert inline["gpu_ms"] == 2000.0 and inline["input_wait_ms"] == 640.0
    assert inline["wait_share"] == pytest.approx(640 / 2640)
    assert inline["wait_share"] > HOST_BOUND_WAIT and inline["binding"] == "host"
    assert inline["host_per_gpu"] == pytest.approx(640 / 2000)
    text = binding_sentence(read_as(Pipeline, inline, "pipeline"))
    assert text.startswith("**host-bound**") and "24.2% of the time end to end" in text
    ahead = two_batches(wait_ms=1.0, workers=4)
    assert ahead["binding"] == "GPU" and ahead["end_to_end_share"] == pytest.approx(2000 / 2008)
    assert binding_sentence(read_as(Pipeline, ahead, "pipeline")).startswith("**GPU-bound**")


def test_a_host_that_kept_up_only_beside_the_reference_run_is_named():
    # 1.2 s of host work per worker against 1 s of GPU per batch: no wait here, since the
    # workers also ran during each batch's untimed reference generation.
    slow = two_batches(wait_ms=0.5, workers=1, host_ms=600.0)
    assert slow["binding"] == "GPU" and slow["host_per_gpu"] == pytest.approx(2.4)
    assert "would be host-bound" in binding_sentence(read_as(Pipeline, slow, "pipeline"))
    empty = pipeline_section([], 2)
    assert empty["batches"] == 0
    assert "No figure says" in binding_sentence(read_as(Pipeline, empty, "pipeline"))
    assert "predates" in binding_sentence(None)

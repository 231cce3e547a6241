"""Traffic counted op by op on real modules (the bytes as implemented): what each kind of op
reads and writes, and the necessary bytes of the analytic model set against it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vlmprof.flops.analytic import llm_prefill_cost, view_cost, vision_cost
from vlmprof.flops.counted_bytes import (
    ByteCount,
    OpBytes,
    count_bytes,
    decoder_bytes,
    tensor_bytes,
    view_bytes,
    vision_bytes,
)
from vlmprof.models.deepseek_ocr.dims import PRESETS
from vlmprof.models.deepseek_ocr.model import build_module

BF16 = 2
REPO = Path(__file__).resolve().parents[1]


class Probe(nn.Module):
    """Wraps a function of its input as a module with one weight, so the counter sees ops."""

    def __init__(self, fn) -> None:  # noqa: ANN001
        super().__init__()
        self.fn = fn
        self.weight = nn.Parameter(torch.randn(16, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


def test_a_linear_layer_reads_input_and_weights_and_writes_output() -> None:
    layer = nn.Linear(8, 16, bias=False)
    count = count_bytes(layer, torch.randn(4, 8))
    assert set(count.by_op) == {"mm"}
    mm = count.by_op["mm"]
    assert (mm.read, mm.write, mm.weights) == (4 * 8 * 4 + 16 * 8 * 4, 4 * 16 * 4, 16 * 8 * 4)
    assert count.matmul == mm and count.other == OpBytes()


def test_views_move_nothing_and_elementwise_ops_read_and_write_once() -> None:
    def fn(self: Probe, x: torch.Tensor) -> torch.Tensor:
        y = x.view(4, 8).t()  # views: no traffic
        return torch.nn.functional.gelu(y.contiguous())  # a copy, then an activation

    count = count_bytes(Probe(fn), torch.randn(32))
    size = 32 * 4
    assert count.by_op["clone"] == OpBytes(size, size, 0)
    assert count.by_op["gelu"] == OpBytes(size, size, 0)
    assert set(count.by_op) == {"clone", "gelu"}
    assert count.matmul == OpBytes()


def test_in_place_ops_read_and_write_their_target_gathers_and_scatters_only_their_rows() -> None:
    index = torch.tensor([0, 3])

    def fn(self: Probe, x: torch.Tensor) -> torch.Tensor:
        x.add_(1.0)
        rows = self.weight[index]  # gathers 2 of 16 rows
        out = torch.zeros(16, 8)
        out.index_add_(0, index, rows)  # scatters 2 rows
        return out

    count = count_bytes(Probe(fn), torch.randn(16, 8))
    whole, two_rows, indices = 16 * 8 * 4, 2 * 8 * 4, 2 * 8
    assert count.by_op["add_"] == OpBytes(whole, whole, 0)
    assert count.by_op["index"] == OpBytes(indices + two_rows, two_rows, 0)
    assert count.by_op["index_add_"] == OpBytes(indices + 2 * two_rows, two_rows, 0)


def test_an_expanded_tensor_counts_its_storage_once() -> None:
    assert tensor_bytes(torch.ones(1, 8).expand(100, 8)) == 8 * 4
    assert tensor_bytes(torch.ones(3, 8)[:, :2]) == 3 * 2 * 4


def test_a_batch_reads_weights_once_and_repetitions_read_them_each_time() -> None:
    count = ByteCount({"mm": OpBytes(read=10, write=4, weights=6)})
    assert count.batched(3).by_op["mm"] == OpBytes(read=6 + 3 * 4, write=12, weights=6)
    assert count.scaled(3).by_op["mm"] == OpBytes(read=30, write=12, weights=18)
    assert (count + count).by_op["mm"] == count.scaled(2).by_op["mm"]


@pytest.fixture(scope="module")
def small_model() -> nn.Module:
    return build_module(PRESETS["small"], "meta", torch.bfloat16)


def sam_bias_bytes(dims, view: int) -> int:  # noqa: ANN001
    """One pass over SAM's (tokens x tokens) relative-position bias per head, in bfloat16."""
    sam, grid = dims.sam, view // dims.sam.patch
    total = 0
    for block in range(sam.depth):
        side = grid if block in sam.global_blocks else sam.window
        windows = 1 if block in sam.global_blocks else math.ceil(grid / side) ** 2
        total += windows * sam.heads * side**4 * BF16
    return total


def test_sams_necessary_bytes_leave_out_the_bias_the_implementation_moves_four_times(
    small_model,
) -> None:
    """The small preset's global view, where the bias dominates. The released code's add
    writes it, the reshape into SDPA's mask copies it and SDPA reads it: four passes as
    implemented, none necessary (folding it into the query-key product needs no bias)."""
    dims = PRESETS["small"]
    counted = view_bytes(small_model, dims, 1024)["sam"]
    necessary = view_cost(dims, 1024, BF16)["sam"].necessary_bytes
    bias = sam_bias_bytes(dims, 1024)
    # Matmul-class as implemented: the necessary bytes plus SDPA's read of the mask.
    assert counted.matmul.total == pytest.approx(necessary + bias, rel=0.01)
    # Every op: at least the bias's other three passes on top.
    assert counted.total.total - counted.matmul.total >= 3 * bias


def test_necessary_bytes_match_the_counted_matmul_class_traffic_outside_sam(small_model) -> None:
    dims = PRESETS["small"]
    page = vision_bytes(small_model, dims, 1024, 640, 2)  # gundam: global view and 2 crops
    necessary = vision_cost(dims, "gundam", 2, BF16)
    for stage in ("clip", "projector"):
        assert page[stage].matmul.total == pytest.approx(necessary[stage].necessary_bytes, rel=0.05)
    prefill = decoder_bytes(small_model, dims, 64, 64)
    expected = llm_prefill_cost(dims, 64, BF16).necessary_bytes
    assert prefill.matmul.total == pytest.approx(expected, rel=0.05)


def test_the_page_benchmark_sets_counted_traffic_beside_the_analytic_bytes(tmp_path) -> None:
    out = tmp_path / "counted.json"
    argv = ["--preset", "small", "--crops", "2", "--prefill-len", "64", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "benchmarks/counted_bytes.py", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["stage"]: row for row in json.loads(out.read_text())["rows"]}
    assert list(rows) == [
        "sam", "clip", "projector", "vision", "llm_prefill", "prefill", "decode_step"
    ]  # fmt: skip
    dims = PRESETS["small"]
    necessary = llm_prefill_cost(dims, 64, BF16).necessary_bytes
    assert rows["llm_prefill"]["necessary bytes"] == necessary
    for key in ("necessary bytes", "bytes as implemented", "counted read bytes"):
        parts = rows["vision"][key] + rows["llm_prefill"][key]
        assert rows["prefill"][key] == pytest.approx(parts)
    assert "clone" in rows["sam"]["top other ops"]
    assert "| decode_step |" in done.stdout

"""Vision stages replayed from CUDA graphs (`vision: cuda_graph`): one capture per input
shape, the eager path's embeddings, hooks still around each stage. Capture needs CUDA, so
those cases are skipped without a GPU; the signature that picks a graph is checked on CPU.
"""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch
from PIL import Image
from torch.utils._pytree import tree_flatten

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.shape_graphs import ShapeGraphs, _signature, graph_parts
from vlmprof.models.static_decode import GraphPool

NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# Largest embedding difference of the replayed vision path against the eager one, relative
# to the largest eager value: the same kernels run, so only algorithm choices may differ.
REPLAYED = {"float32": 1e-5, "bfloat16": 1e-2}


def _key(*args, **kwargs):
    return _signature(*tree_flatten((args, kwargs)))


def test_a_graph_is_chosen_by_shape_dtype_and_plain_values():
    x = torch.zeros(2, 3)
    assert _key(x, scale=2) == _key(torch.ones(2, 3), scale=2)
    assert _key(x, scale=2) != _key(torch.zeros(3, 3), scale=2)
    assert _key(x, scale=2) != _key(x.double(), scale=2)
    assert _key(x, scale=2) != _key(x, scale=3)
    assert _key(x, x) != _key([x, x])


def test_graph_parts_wraps_the_named_forwards_and_names_a_missing_one():
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    pool = GraphPool()
    graph_parts(module, ["0"], pool)
    assert isinstance(module[0].forward, ShapeGraphs)
    assert module[0].forward.pool is pool
    assert not isinstance(module[1].forward, ShapeGraphs)
    with pytest.raises(ValueError, match="vision: module 'missing' not found"):
        graph_parts(module, ["missing"], pool)


def _embeddings(adapter, inputs):
    model = adapter.module.model
    return model.image_embeddings(
        inputs.pixel_views["global"], inputs.pixel_views.get("crops"), *inputs.tiles
    )


@NEEDS_CUDA
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_replayed_vision_gives_the_eager_embeddings(dtype):
    spec = ModelSpec(preset="small", device="cuda", dtype=dtype)
    eager = build_adapter(spec)
    graphed = build_adapter(dataclasses.replace(spec, vision="cuda_graph"))
    sam = graphed.module.model.sam_model
    assert isinstance(sam.forward, ShapeGraphs)
    calls = []
    sam.register_forward_hook(lambda *_: calls.append(1))
    pages = [Image.new("RGB", (700, 1000), colour) for colour in ("white", "gray")]
    with torch.no_grad():
        for page in pages:
            inputs = eager.preprocess(page).to(eager.device, eager.dtype)
            want = _embeddings(eager, inputs).float()
            got = _embeddings(graphed, inputs).float()
            scale = want.abs().max().item()
            assert (got - want).abs().max().item() <= REPLAYED[dtype] * scale
    # the crops and the global view: one capture per shape, reused by the second page
    shapes = {inputs.pixel_views["global"].shape}
    crops = inputs.pixel_views.get("crops")
    if crops is not None and crops.shape[0] > 1:
        shapes.add(crops.shape)
    assert len(sam.forward.captures) == len(shapes)
    assert len(calls) == 2 * len(shapes)  # the stage hook fired on every replay


@NEEDS_CUDA
def test_another_thread_may_pin_and_copy_pages_while_a_graph_is_captured():
    # Worker-fed runs pin each page (the DataLoader's pinning thread) and copy it to the
    # device (a thread of its own) while the timing process captures its graphs; on an H100
    # a capture in the default (global) mode made that pinning fail with
    # cudaErrorStreamCaptureUnsupported.
    errors: list[BaseException] = []

    def pin_and_copy() -> None:
        try:
            page = torch.ones(1024, 1024).pin_memory()
            with torch.cuda.stream(torch.cuda.Stream()):
                page.to("cuda", non_blocking=True)
        except BaseException as error:  # the thread's failure, read by the test
            errors.append(error)

    x = torch.ones(8, device="cuda")

    def run() -> torch.Tensor:
        thread = threading.Thread(target=pin_and_copy)
        thread.start()
        thread.join()
        return x * 2

    graph, output = GraphPool().capture(run)
    x.fill_(3.0)
    graph.replay()
    torch.cuda.synchronize()
    assert not errors, errors
    assert torch.equal(output, torch.full_like(x, 6.0))

"""Each model's CUDA graphs capture into a memory pool of its own, held by its adapter and
gone with it: what of that can be seen without CUDA (the pool is taken at the first capture,
so building a graphed model touches no CUDA). Two graphed models in one CUDA process are
run in tests/test_static_decode_cuda.py."""

from __future__ import annotations

import gc
import weakref

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.shape_graphs import ShapeGraphs

GRAPHED = {"decode": "cuda_graph", "vision": "cuda_graph", "sam_attention": "folded"}


def _vision_replays(adapter) -> list[ShapeGraphs]:
    forwards = [module.forward for module in adapter.module.modules()]
    return [forward for forward in forwards if isinstance(forward, ShapeGraphs)]


def test_each_graphed_model_captures_into_a_pool_of_its_own():
    first, second = (build_adapter(ModelSpec(preset="small", **GRAPHED)) for _ in range(2))
    assert first.graph_pool is not second.graph_pool
    for adapter in (first, second):
        replays = _vision_replays(adapter)
        assert len(replays) == len(adapter.stage_map)
        assert {id(r.pool) for r in replays} == {id(adapter.static.pool)}
        assert adapter.static.pool is adapter.graph_pool
        assert adapter.graph_pool.handle is None  # nothing captured: no pool taken yet


def test_a_transformers_vlm_captures_its_decode_into_its_own_pool():
    spec = ModelSpec(name="hf_vlm", architecture="qwen2_5_vl", decode="cuda_graph")
    adapter = build_adapter(spec)
    assert adapter.static.graph and adapter.static.pool is adapter.graph_pool


def test_the_pool_goes_with_its_model():
    adapter = build_adapter(ModelSpec(preset="small", **GRAPHED))
    pool = weakref.ref(adapter.graph_pool)
    del adapter
    gc.collect()  # the adapter's step and the wrapped forwards point back at it: a cycle
    assert pool() is None, "something beside the model keeps its graph pool"

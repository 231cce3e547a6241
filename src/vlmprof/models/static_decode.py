"""Decoding with a static KV cache, optionally as one captured CUDA graph per cache size.

The released code path grows its KV cache by concatenation and launches every kernel of a
decode step from Python, so a step costs hundreds of launches. With a static cache every
step has the same shapes and addresses, so the whole step (embedding, decoder, head) can be
captured once as a CUDA graph and replayed with a single launch. Cache lengths are rounded
up to a bucket so pages of similar length share one cache and one graph; a batch of pages
has its own cache and graph per batch size, and its padding counts are a buffer the graph
reads, refilled before each replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, StaticCache

from vlmprof.models.base import DecodeState, ModelSpec

CACHE_BUCKET = 256
# Eager runs of the step before capture, so lazy initialisation and kernel selection happen
# outside the graph (the CUDA graph documentation asks for this).
WARMUP_STEPS = 2

StepFunction = Callable[[torch.Tensor, StaticCache, torch.Tensor | None], torch.Tensor]


class GraphPool:
    """The memory pool one model's CUDA graphs capture into, owned by its adapter.

    The model's graphs (each decode step's, each vision stage's per input shape) replay one
    at a time and every replay's outputs are cloned at once, so one graph's intermediates
    may reuse another's memory. A pool per graph instead holds the sum of them all: 46-55 GB
    at batch 32 and 64 on an H100, where it ran the batches out of memory
    (docs/measurements/throughput-h100.md). Another model's graphs get a pool of their own:
    one pool for the whole process broke the allocator when a second graphed model was
    built after the first (an H100, docs/measurements/decode-paths-h100.md), and would let
    one model's capture take memory another model's graphs still replay into. torch keeps a
    private pool until its graphs and every tensor made during their capture are gone, so
    the pool goes with the adapter that holds them.
    """

    def __init__(self) -> None:
        # Taken at the first capture, so a model that never captures never touches CUDA.
        self.handle: Any = None

    def capture(
        self, run: Callable[[], Any], rewind: Callable[[], None] | None = None
    ) -> tuple[torch.cuda.CUDAGraph, Any]:
        """`run` warmed up WARMUP_STEPS times on a side stream, `rewind` (what the warm-up
        changed, e.g. a cache's fill), then one call captured into a graph in this pool: the
        graph and that call's output, which every replay rewrites."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                run()
        torch.cuda.current_stream().wait_stream(side)
        if rewind is not None:
            rewind()
        if self.handle is None:
            self.handle = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        # Only this thread's calls are checked during the capture: the threads feeding
        # pages (pinning them, copying them on a stream of their own) go on meanwhile, and
        # the default (global) mode failed their pinning (an H100, docs/measurements/
        # throughput-h100.md).
        with torch.cuda.graph(graph, pool=self.handle, capture_error_mode="thread_local"):
            output = run()
        return graph, output


def bucket_length(needed: int, bucket: int = CACHE_BUCKET) -> int:
    """Smallest multiple of `bucket` that holds `needed` positions."""
    return -(-needed // bucket) * bucket


def _seen_lengths(cache: StaticCache) -> list[torch.Tensor]:
    """Each layer's on-device count of positions written so far."""
    return [layer.cumulative_length for layer in cache.layers]


@dataclass
class _Slot:
    """One cache size and batch size: its cache and, once captured, its graph and static
    buffers."""

    cache: StaticCache
    graph: torch.cuda.CUDAGraph | None = None
    token: torch.Tensor | None = None
    pads: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class StaticDecoder:
    """Prefill into a static cache sized to the generation, then decode step by step.

    `step` is the model's decode step: (tokens (B, 1), cache, padding counts (B,) or None
    for one page) -> logits (B, vocab); it must read the position from the cache (no host
    value), so a replay of its graph advances exactly like an eager call.
    """

    def __init__(self, config: object, step: StepFunction, graph: bool, pool: GraphPool) -> None:
        self.config = config
        self.step_function = step
        self.graph = graph
        self.pool = pool
        self.slots: dict[tuple[int, int], _Slot] = {}
        self.current: _Slot | None = None

    def cache_for(self, needed: int, batch: int = 1) -> StaticCache:
        """An empty static cache with room for `needed` positions of `batch` pages (reused
        per bucket and batch size)."""
        key = (bucket_length(needed), batch)
        slot = self.slots.get(key)
        if slot is None:
            slot = _Slot(StaticCache(config=self.config, max_cache_len=key[0]))
            self.slots[key] = slot
        else:
            slot.cache.reset()
        self.current = slot
        return slot.cache

    def step(self, token: torch.Tensor, pads: torch.Tensor | None = None) -> torch.Tensor:
        """Logits after `token` (B, 1) of pages padded by `pads`; the first call per cache
        and batch size captures the graph."""
        slot = self.current
        if slot is None:
            raise RuntimeError("StaticDecoder.step called before cache_for (no prefill)")
        if not self.graph:
            return self.step_function(token, slot.cache, pads)
        if slot.graph is None:
            self._capture(slot, token, pads)
        assert slot.token is not None and slot.logits is not None and slot.graph is not None
        slot.token.copy_(token)
        if slot.pads is not None and pads is not None:
            slot.pads.copy_(pads)
        slot.graph.replay()
        return slot.logits.clone()

    def _capture(self, slot: _Slot, token: torch.Tensor, pads: torch.Tensor | None) -> None:
        """Warm the step up eagerly, rewind the cache, then capture one step as a graph."""
        lengths = _seen_lengths(slot.cache)
        saved = [length.clone() for length in lengths]
        slot.token = token.clone()
        slot.pads = None if pads is None else pads.clone()

        def rewind() -> None:
            for length, value in zip(lengths, saved, strict=True):
                length.copy_(value)

        slot.graph, slot.logits = self.pool.capture(
            lambda: self.step_function(slot.token, slot.cache, slot.pads), rewind
        )


class StaticDecodePath:
    """The decode path `spec.decode` picks, for adapters that offer static and CUDA-graph
    decode: the released one (a growing DynamicCache, the adapter's eager `_step`) or a
    StaticDecoder, so every such adapter sizes, resets and steps its caches alike.

    It goes before ModelAdapter in an adapter's bases, so its `decode_step` is the
    adapter's; the adapter's prefill makes its cache with `new_cache`, sized by what the
    generation passes it. The adapter defines `text_config()` (what a cache is shaped by) and
    `_step(token, cache, pads)`, its released decode step, and calls `init_decode_path`,
    which also gives it `graph_pool`: every CUDA graph of the adapter (its decode steps, its
    vision stages) captures into that pool, its own.
    """

    spec: ModelSpec
    static: StaticDecoder | None
    graph_pool: GraphPool

    def init_decode_path(self, step: StepFunction) -> None:
        """Set up the decode path of `spec.decode` and the adapter's graph pool; `step`
        decodes a static cache (it must read its position from the cache, as StaticDecoder
        asks)."""
        self.graph_pool = GraphPool()
        graphed = self.spec.decode == "cuda_graph"
        self.static = (
            StaticDecoder(self.text_config(), step, graphed, self.graph_pool)
            if self.spec.decode != "eager"
            else None
        )

    def new_cache(
        self, prefill_len: int, new_tokens: int, batch: int = 1
    ) -> DynamicCache | StaticCache:
        """A growing KV cache (released code), or a static one with room for `batch` pages'
        prompts of `prefill_len` positions and the `new_tokens` the generation adds."""
        if self.static is None:
            return DynamicCache(config=self.text_config())
        return self.static.cache_for(prefill_len + new_tokens, batch)

    def decode_step(self, token: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """Each page's token through the decoder with the KV cache: the released `_step`, or
        the static decoder's step (a graph replay under cuda_graph)."""
        static = self.static
        if static is None:
            logits = self._step(token, state.cache, state.pads)
        else:
            logits = static.step(token, state.pads)
        state.position += 1
        return logits

    @contextmanager
    def released_decode(self) -> Iterator[None]:
        """Run the block on the released path (growing cache, eager steps), whatever
        `spec.decode` says: its work is then the released code's, op by op."""
        static, self.static = self.static, None
        try:
            yield
        finally:
            self.static = static

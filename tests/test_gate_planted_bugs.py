"""The correctness gate catches the bugs it exists for, and passes the paths that are right.

Each bug is planted in the real code (the batched attention mask, the decode positions,
the static KV cache, a 3D-rope model's kept rope offset, one decoder layer's attention) of
a small-preset model on the CPU, in float32 and in bfloat16, over 32 tokens of two rendered
pages of different sizes (so a batch of them really is padded), and over pages of different
lengths. A right path of the same kind (batched, static-cache) must pass with the same
factors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
import torch
from transformers.cache_utils import StaticLayer

from tests.workflow_helpers import default_config, default_settings
from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.base import ModelAdapter
from vlmprof.models.deepseek_ocr import adapter as deepseek_adapter
from vlmprof.models.implementation import scale_decode_attention
from vlmprof.models.padded_batch import padded_attention
from vlmprof.runtime.output_length import OutputLength
from vlmprof.variants.gate import GateFactors
from vlmprof.variants.gate_runs import GateRuns

TOKENS = 32
DTYPES = ("float32", "bfloat16")
# A page with two crops and a small scan without: a batch of the two pads the scan.
SIZES = (PAGE_SIZES[0], PAGE_SIZES[5])
BATCH = len(SIZES)
GATE = default_config()["variant_gate"]
FACTORS = GateFactors(GATE["code_path_factor"], GATE["precision_factor"])


def _pages(sizes: tuple = SIZES) -> dict[str, object]:
    return {
        f"page-{index}": render_page("mixed_layout", size, 0, index)
        for index, size in enumerate(sizes)
    }


@pytest.fixture(scope="module")
def deepseek(request: pytest.FixtureRequest) -> GateRuns:
    spec = ModelSpec(preset="small", dtype=request.param, max_crops=2)
    return GateRuns(spec, _pages(), default_settings(max_new_tokens=TOKENS), FACTORS)


def _assert_passes(verdict: dict) -> None:
    assert verdict["status"] == "passed", verdict["detail"]


def _assert_fails(verdict: dict) -> None:
    assert verdict["status"] == "failed", verdict["detail"]


# The right paths the bugs below are planted in; in bfloat16 (slow on a CPU) the one that
# holds both the padded batch and the static cache.
RIGHT_PATHS = [
    ("float32", {"batch_size": BATCH}),
    ("float32", {"decode": "static"}),
    ("float32", {"decode": "static", "batch_size": BATCH}),
    ("float32", {}),
    ("bfloat16", {"decode": "static", "batch_size": BATCH}),
]


# Module-scoped, as the fixture: each dtype's runs are made once for all of its tests.
@pytest.mark.parametrize(
    ("deepseek", "changes"), RIGHT_PATHS, indirect=["deepseek"], scope="module"
)
def test_right_paths_pass(deepseek: GateRuns, changes: dict) -> None:
    _assert_passes(deepseek.judge("right", changes))


def _mask_bug(alter: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Callable:
    """A context in which the adapter's batched mask and positions go through `alter`."""

    @contextlib.contextmanager
    def planted() -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(deepseek_adapter, "padded_attention", alter)
            yield

    return planted


def _leaking_padding(pads, slots, kv_length, dtype):
    """Every real query also sees the last padding key of its page."""
    mask, positions = padded_attention(pads, slots, kv_length, dtype)
    keys = torch.arange(kv_length)[None, None, :]
    leak = (keys == (pads[:, None, None] - 1)) & (slots[None, :, None] >= pads[:, None, None])
    return mask.masked_fill(leak[:, None], 0.0), positions


def _blind_to_itself(pads, slots, kv_length, dtype):
    """A decode query cannot see its own key."""
    mask, positions = padded_attention(pads, slots, kv_length, dtype)
    if slots.numel() == 1:
        mask = mask.clone()
        mask[..., int(slots[0])] = torch.finfo(dtype).min
    return mask, positions


def _positions_not_offset(pads, slots, kv_length, dtype):
    """Decode positions counted from the batch's first column, not the page's first token."""
    mask, positions = padded_attention(pads, slots, kv_length, dtype)
    if slots.numel() == 1:
        positions = slots[None, :].expand(pads.shape[0], -1)
    return mask, positions


@contextlib.contextmanager
def _cache_writes_one_slot_behind() -> Iterator[None]:
    """A decode step's key and value go over the previous token's slot of a static cache."""
    update = StaticLayer.update

    def misplaced(self, key_states, value_states, *args, **kwargs):
        if key_states.shape[-2] != 1:
            return update(self, key_states, value_states, *args, **kwargs)
        self.cumulative_length.sub_(1)
        kept = update(self, key_states, value_states, *args, **kwargs)
        self.cumulative_length.add_(1)
        return kept

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StaticLayer, "update", misplaced)
        yield


@pytest.mark.parametrize("deepseek", DTYPES, indirect=True)
@pytest.mark.parametrize(
    ("changes", "bug"),
    [
        ({"batch_size": BATCH}, _mask_bug(_leaking_padding)),
        ({"batch_size": BATCH}, _mask_bug(_blind_to_itself)),
        ({"batch_size": BATCH}, _mask_bug(_positions_not_offset)),
        ({"decode": "static"}, _cache_writes_one_slot_behind),
    ],
    ids=["padding-key-leaks", "query-blind-to-its-key", "positions-not-offset", "cache-misplaced"],
)
def test_planted_bugs_fail(deepseek: GateRuns, changes: dict, bug: Callable) -> None:
    with bug():
        verdict = deepseek.judge("bug", changes)
    _assert_fails(verdict)


# Pages of two lengths (a seeded log-normal draw per page): in a batch of both, the shorter
# page's slot runs on past its end while the longer one decodes.
UNEVEN = OutputLength("lognormal", mean=16.0, spread=0.8, seed=4)


@pytest.fixture(scope="module")
def uneven() -> GateRuns:
    spec = ModelSpec(preset="small", max_crops=2)
    settings = default_settings(max_new_tokens=TOKENS, output_length=UNEVEN)
    return GateRuns(spec, _pages(), settings, FACTORS)


def test_pages_of_different_lengths_are_gated_each_at_its_own(uneven: GateRuns) -> None:
    lengths = UNEVEN.page_lengths(_pages(), TOKENS).tokens
    assert len(set(lengths.values())) == BATCH  # the premise: the pages' lengths differ
    assert {page: len(saved["tokens"]) for page, saved in uneven.baseline.items()} == lengths
    verdict = uneven.judge("right", {"decode": "static", "batch_size": BATCH})
    _assert_passes(verdict)
    assert {page: result["steps"] for page, result in verdict["page_results"].items()} == lengths
    with _mask_bug(_positions_not_offset)():
        _assert_fails(uneven.judge("bug", {"batch_size": BATCH}))
    with _cache_writes_one_slot_behind():
        _assert_fails(uneven.judge("bug", {"decode": "static"}))


def _one_layer_attention_off_by_1_percent(adapter: ModelAdapter) -> None:
    """The last decoder layer's attention output 1% too large at every decode step."""
    last = adapter.decoder_layer_paths()[-1]
    scale_decode_attention(adapter.module, f"{last}.self_attn", 1.01)


@pytest.mark.parametrize("deepseek", DTYPES, indirect=True)
def test_a_1_percent_error_in_one_decode_layer_fails(deepseek: GateRuns) -> None:
    _assert_fails(deepseek.judge("bug", {}, _one_layer_attention_off_by_1_percent))


# An A4 page and a slide: other image grids, so other 3D-rope offsets (an A4 page and the
# small scan happen to share theirs).
QWEN_SIZES = (PAGE_SIZES[0], PAGE_SIZES[3])


@pytest.fixture(scope="module", params=DTYPES)
def qwen(request: pytest.FixtureRequest) -> GateRuns:
    spec = ModelSpec(name="hf_vlm", architecture="qwen2_5_vl", dtype=request.param)
    pages = _pages(QWEN_SIZES)
    return GateRuns(spec, pages, default_settings(max_new_tokens=TOKENS), FACTORS)


def test_the_3d_rope_pages_have_other_offsets() -> None:
    adapter = build_adapter(ModelSpec(name="hf_vlm", architecture="qwen2_5_vl", decode="static"))
    offsets = []
    for page in _pages(QWEN_SIZES).values():
        adapter.prefill(adapter.preprocess(page), 1)
        offsets.append(adapter.rope_delta.tolist())
    assert offsets[0] != offsets[1]


def _keeps_the_first_pages_rope_offset(adapter: ModelAdapter) -> None:
    """What a graph replaying the first page's offset does: every later page's decode
    positions are shifted by the first page's 3D-rope offset, not its own."""
    prefill = adapter.prefill

    def stale(inputs, new_tokens):
        first = None if adapter.rope_delta is None else adapter.rope_delta.clone()
        logits, state = prefill(inputs, new_tokens)
        if first is not None:
            adapter.rope_delta.copy_(first)
        return logits, state

    adapter.prefill = stale


def test_a_static_3d_rope_model_passes_and_its_stale_offset_fails(qwen: GateRuns) -> None:
    _assert_passes(qwen.judge("right", {"decode": "static"}))
    _assert_fails(qwen.judge("bug", {"decode": "static"}, _keeps_the_first_pages_rope_offset))

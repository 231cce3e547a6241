"""Generic causal-LM adapter: prefill and decode on CPU, seeded, from a preset or a directory."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from PIL import Image

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.generate import greedy_generate
from vlmprof.runtime.instruments import Instruments
from vlmprof.runtime.nvtx_ranges import NvtxRanges

SPEC = ModelSpec(name="causal_lm", preset="small", overrides={"decoder": {"prompt_tokens": 24}})
PAGE = Image.new("RGB", (64, 64), (255, 255, 255))


def _tokens(adapter, new_tokens: int = 6) -> torch.Tensor:
    inputs = adapter.preprocess(PAGE).to(adapter.device, adapter.dtype)
    return greedy_generate(adapter, inputs, new_tokens, Instruments(None, NvtxRanges(False)))


def test_prefill_and_decode_run_and_are_seeded():
    adapter = build_adapter(SPEC)
    inputs = adapter.preprocess(PAGE)
    assert inputs.prefill_len == 24 and inputs.image_tokens == 0
    assert adapter.stage_modules() == {}
    with torch.inference_mode():
        logits, state = adapter.prefill(inputs, 2)
        assert logits.shape == (1, 4096)
        step = adapter.decode_step(logits.argmax(-1, keepdim=True), state)
    assert step.shape == (1, 4096) and state.position == 25
    first = _tokens(adapter)
    assert len(first) == 6
    assert torch.equal(first, _tokens(build_adapter(SPEC)))
    other = build_adapter(replace(SPEC, seed=1))
    assert not torch.equal(next(adapter.module.parameters()), next(other.module.parameters()))
    assert adapter.describe()["dims"]["num_hidden_layers"] == 2


def test_overrides_change_the_config():
    spec = replace(SPEC, overrides={"decoder": {"num_hidden_layers": 1}})
    assert len(build_adapter(spec).module.model.layers) == 1


def test_local_directory_round_trip(tmp_path):
    adapter = build_adapter(SPEC)
    adapter.module.save_pretrained(str(tmp_path))
    loaded = build_adapter(replace(SPEC, checkpoint=str(tmp_path), seed=7))
    assert torch.equal(_tokens(adapter), _tokens(loaded))


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="model.checkpoint: .* has no config.json"):
        build_adapter(replace(SPEC, checkpoint=str(tmp_path)))
    with pytest.raises(ValueError, match="model.preset: unknown preset 'auto'"):
        build_adapter(replace(SPEC, preset="auto"))
    with pytest.raises(ValueError, match="model.overrides.sam"):
        build_adapter(replace(SPEC, overrides={"sam": {}}))
    with pytest.raises(ValueError, match="prompt_tokens"):
        build_adapter(replace(SPEC, overrides={"decoder": {"prompt_tokens": 0}}))

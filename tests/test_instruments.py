"""Stage instruments and the timed run's host hygiene: hooks by module path, and Python's
garbage collector paused while a run is timed."""

from __future__ import annotations

import gc

import pytest
import torch
from PIL import Image

from tests.workflow_helpers import default_settings
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.collector import collector_paused
from vlmprof.runtime.instruments import Instruments, attach_stage_hooks, detach
from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer
from vlmprof.runtime.timed_run import timed_run


def toy() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Sequential(torch.nn.ReLU()))


def test_hooks_time_nested_modules_by_path_and_detach():
    model, timer = toy(), StageTimer("cpu")
    handles = attach_stage_hooks(
        model, {"0": "first", "1.0": "relu"}, Instruments(timer, NvtxRanges(enabled=False))
    )
    model(torch.ones(1, 4))
    detach(handles)
    model(torch.ones(1, 4))
    times = timer.finish()
    assert sorted(times) == ["first", "relu"] and all(len(v) == 1 for v in times.values())


def test_a_missing_stage_module_is_named():
    with pytest.raises(ValueError, match=r"stage module '1.3' \(clip\) not found"):
        attach_stage_hooks(toy(), {"1.3": "clip"}, Instruments(None, NvtxRanges(enabled=False)))


def test_collector_paused_restores_the_state_it_found():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_timed_run_keeps_the_garbage_collector_out():
    adapter = build_adapter(ModelSpec(preset="small", mode="tiny"))
    seen: list[bool] = []
    # Every module's forward, the vision stages' and each decode step's alike.
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda *_: seen.append(gc.isenabled())
    )
    inputs = adapter.preprocess(Image.new("RGB", (640, 640), "white"))
    settings = default_settings(max_new_tokens=3, nvtx=False)
    try:
        timing = timed_run(adapter, [inputs], settings, NvtxRanges(enabled=False))
    finally:
        hook.remove()
    assert timing["tokens"] == [3]
    assert timing["host"]["wall_ms"] > 0 and timing["host"]["thread_cpu_ms"] > 0
    assert len(seen) > 10 and not any(seen)
    assert gc.isenabled()

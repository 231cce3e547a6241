"""One place that opens and closes a stage on every instrument: timer, NVTX, profiler label.

Forward hooks on the stage modules (sam, clip, projector) and the explicit prefill/decode
blocks both go through `Instruments`, so a stage is named and bounded the same way for
the timing pass, Nsight Systems and the torch-profiler pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from vlmprof.runtime.nvtx_ranges import NvtxRanges
from vlmprof.runtime.stage_timer import StageTimer


class Instruments:
    """Stage enter/exit on a timer (optional), NVTX and torch.profiler labels (optional)."""

    def __init__(
        self, timer: StageTimer | None, nvtx: NvtxRanges, record_functions: bool = False
    ) -> None:
        self.timer = timer
        self.nvtx = nvtx
        self.record_functions = record_functions
        self._stack: list[tuple[int | None, Any]] = []

    def enter(self, label: str) -> None:
        """Open stage `label` on every instrument."""
        self.nvtx.push(label)
        profiler_range = None
        if self.record_functions:
            profiler_range = torch.profiler.record_function(label)
            profiler_range.__enter__()
        handle = self.timer.start(label) if self.timer is not None else None
        self._stack.append((handle, profiler_range))

    def exit(self) -> None:
        """Close the innermost open stage."""
        handle, profiler_range = self._stack.pop()
        if handle is not None and self.timer is not None:
            self.timer.stop(handle)
        if profiler_range is not None:
            profiler_range.__exit__(None, None, None)
        self.nvtx.pop()

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        """Instrument the enclosed block as stage `label`."""
        self.enter(label)
        try:
            yield
        finally:
            self.exit()


def attach_stage_hooks(
    module: torch.nn.Module, stage_modules: dict[str, str], instruments: Instruments
) -> list[RemovableHandle]:
    """Open a stage before and close it after each named module's forward.

    Raises a ValueError naming the module path when the model has no such module, so a
    checkpoint with other names fails loudly instead of silently losing a stage.
    """
    handles: list[RemovableHandle] = []
    for path, label in stage_modules.items():
        try:
            target = module.get_submodule(path)
        except AttributeError:
            raise ValueError(f"stage module {path!r} ({label}) not found in the model") from None
        handles.append(
            target.register_forward_pre_hook(lambda _m, _a, label=label: instruments.enter(label))
        )
        handles.append(target.register_forward_hook(lambda _m, _a, _o: instruments.exit()))
    return handles


def detach(handles: list[RemovableHandle]) -> None:
    """Remove hooks attached by `attach_stage_hooks`."""
    for handle in handles:
        handle.remove()

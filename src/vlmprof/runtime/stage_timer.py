"""Stage timing: CUDA events on a GPU, `perf_counter` on the CPU, read once per run.

The clock is chosen once. On CUDA, marks are events recorded on the current stream, so
timing never synchronises inside a run; `finish()` synchronises once and converts every
interval to milliseconds. Back-to-back intervals (decode steps) share their boundary
marks, so n steps cost n + 1 marks instead of 2n.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise

import torch


@dataclass
class _Interval:
    label: str
    start: object
    end: object | None = None


class StageTimer:
    """Collects labelled intervals; a label may occur many times (sam runs once per view batch)."""

    def __init__(self, device: str) -> None:
        """`device` is where the timed work runs: "cpu", "cuda" (the current GPU) or "cuda:N".

        On CUDA, marks are recorded on that device's current stream, whichever GPU is
        current, so a model on a second GPU is timed on its own stream.
        """
        self.cuda = device.startswith("cuda")
        if self.cuda:
            index = torch.device(device).index
            self._index = torch.cuda.current_device() if index is None else index
            self._stream = torch.cuda.current_stream(self._index)
        self._intervals: list[_Interval] = []
        self._open: dict[int, _Interval] = {}
        self._laps: list[tuple[str, list[object]]] = []
        self._ms: dict[str, list[float]] | None = None

    def _mark(self) -> object:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(self._stream)
            return event
        return time.perf_counter()

    def start(self, label: str) -> int:
        """Open an interval; returns a handle for `stop`."""
        interval = _Interval(label, self._mark())
        self._intervals.append(interval)
        handle = len(self._intervals) - 1
        self._open[handle] = interval
        return handle

    def stop(self, handle: int) -> None:
        """Close the interval opened as `handle`."""
        self._open.pop(handle).end = self._mark()

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        """Time the enclosed block under `label`."""
        handle = self.start(label)
        try:
            yield
        finally:
            self.stop(handle)

    def laps(self, label: str) -> Callable[[], None]:
        """Mark now and return a function that marks again: each call ends one `label`
        interval and starts the next, so a loop's iterations are timed one mark apiece."""
        marks = [self._mark()]
        self._laps.append((label, marks))
        return lambda: marks.append(self._mark())

    def synchronize(self) -> None:
        """Wait until the timed device work is done (a no-op on the CPU clock)."""
        if self.cuda:
            torch.cuda.synchronize(self._index)

    def _between_ms(self, start: object, end: object) -> float:
        if self.cuda:
            return float(start.elapsed_time(end))  # type: ignore[attr-defined]
        return (end - start) * 1000.0  # type: ignore[operator]

    def finish(self) -> dict[str, list[float]]:
        """Synchronise once and return every label's interval lengths in milliseconds."""
        if self._open:
            labels = [interval.label for interval in self._open.values()]
            raise RuntimeError(f"unclosed stage intervals: {labels}")
        self.synchronize()
        durations: dict[str, list[float]] = defaultdict(list)
        for interval in self._intervals:
            durations[interval.label].append(self._between_ms(interval.start, interval.end))
        for label, marks in self._laps:
            durations[label].extend(self._between_ms(a, b) for a, b in pairwise(marks))
        self._ms = dict(durations)
        return self._ms

    def total_ms(self, label: str) -> float | None:
        """Sum of a label's intervals after `finish`, or None if it never ran."""
        if self._ms is None:
            raise RuntimeError("call finish() before reading times")
        values = self._ms.get(label)
        return float(sum(values)) if values else None

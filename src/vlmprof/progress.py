"""Progress of a long job where the user is looking: the terminal Snakemake runs in.

A workflow job's logging goes to its log file (`vlmprof.logs.log_to_file`), but its
standard error is still the one Snakemake was started with, so a line written there shows
in the user's terminal. Each line says where the job is, how long it has run and how long
it should still take; it goes to the log file as well.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger(__name__)

# At most one line per this many seconds, besides the first and the last step's.
DEFAULT_INTERVAL_S = 5.0


def clock_text(seconds: float) -> str:
    """A duration as MM:SS, or H:MM:SS from an hour on."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def job_label(task: str, wildcards: object) -> str:
    """`task` as a workflow job's lines name it: with its arm's folder (`variants/<name>`,
    `models/<name>`) for a job of another arm than the baseline."""
    folder = str(getattr(wildcards, "arm", "")).strip("/")
    return f"{task}, {folder}" if folder else task


class Progress:
    """Counts a job's steps and reports the latest one, rate-limited, with an ETA.

    The expected remaining time is the mean time of the completed steps (since the
    reporter was made) times the steps left. Call `step` between measurements only: it
    writes to a stream.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.label, self.total = label, total
        self.stream = sys.stderr if stream is None else stream
        self.clock, self.interval_s = clock, interval_s
        self.start = clock()
        self.done = 0
        self.last_line_at: float | None = None

    def step(self, position: str, count: int = 1) -> None:
        """Count `count` finished steps (failed ones too) at `position`, e.g. "page 3/12".

        Writes the line for the first and the last step, and otherwise at most one per
        `interval_s`.
        """
        self.done += count
        now = self.clock()
        first, last = self.last_line_at is None, self.done >= self.total
        if not (first or last or now - self.last_line_at >= self.interval_s):
            return
        elapsed = now - self.start
        left = elapsed / self.done * max(self.total - self.done, 0)
        line = f"[{self.label}] {position}: {clock_text(elapsed)} elapsed, ~{clock_text(left)} left"
        self.stream.write(line + "\n")
        self.stream.flush()
        log.info(line)
        self.last_line_at = now

"""The telemetry poller: a process of its own that reads NVML at a fixed interval.

Run by `TelemetrySampler` as `python -m vlmprof.runtime.nvml_poller --device GPU-... --out
FILE`. In its own process no NVML call competes with the profiled run for Python's GIL:
on a thread, the run's thread lost about 1% of its time waiting for it. The energy counter
is read only every `--counter-interval-ms`: one read takes about 4 ms on an H100, and
reading it every 20 ms slowed a host-bound decode by about 10%. Each reading is appended
to FILE as one fixed-size record (`vlmprof.runtime.nvml_sample.encode`); the poller exits
when its standard input closes, which includes its parent dying.
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import sys
import time
from collections.abc import Callable
from typing import BinaryIO

from vlmprof.runtime.nvml_sample import Sample, encode

DEFAULT_READER = "vlmprof.runtime.nvml_sample:nvml_reader"


def load_reader(spec: str, device: str) -> Callable[..., Sample]:
    """The reader a "module:function" factory builds for `device`."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)(device)


def poll(
    read: Callable[..., Sample],
    out: BinaryIO,
    interval_s: float,
    counter_interval_s: float | None,
    control: int,
) -> None:
    """Read (the energy counter every `counter_interval_s`, never when None), append, wait
    for the next tick; return when `control` reaches end of file."""
    next_at = time.perf_counter()
    counter_due = next_at
    while True:
        begin = time.perf_counter()
        with_counter = counter_interval_s is not None and begin >= counter_due
        if with_counter:
            counter_due = begin + counter_interval_s
        sample = read(with_counter=with_counter)
        out.write(encode(sample, time.perf_counter() - begin))
        out.flush()
        next_at += interval_s
        ready, _, _ = select.select([control], [], [], max(0.0, next_at - time.perf_counter()))
        if ready and not os.read(control, 1):
            return


def main() -> None:
    """Poll the named device into the named file until standard input closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", required=True, help="GPU UUID (GPU-...) or index")
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument(
        "--counter-interval-ms", type=float, default=500.0, help="0: never read the counter"
    )
    parser.add_argument("--out", required=True, help="file the records are appended to")
    parser.add_argument("--reader", default=DEFAULT_READER, help="module:function factory")
    args = parser.parse_args()
    try:
        read = load_reader(args.reader, args.device)
    except Exception as error:  # any failure means "no telemetry here": say why, once
        print(f"{type(error).__name__}: {error}".splitlines()[0], file=sys.stderr)
        raise SystemExit(1) from None
    with open(args.out, "ab", buffering=0) as out:
        counter_s = args.counter_interval_ms / 1000.0 if args.counter_interval_ms > 0 else None
        poll(read, out, args.interval_ms / 1000.0, counter_s, sys.stdin.fileno())


if __name__ == "__main__":
    main()

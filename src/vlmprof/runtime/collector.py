"""Python's cyclic garbage collector kept out of timed runs, as `timeit` keeps it out.

The collector starts on allocation counts, so a collection lands in whichever stage crosses
a threshold; a full one walks every live object (the model, every imported module) and takes
milliseconds. On stages launched from Python one kernel at a time that is noise, not model.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the collector inside the block; what the block leaves is collected after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

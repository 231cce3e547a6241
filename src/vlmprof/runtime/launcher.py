"""The launcher: a job claims its device, resolves its placement once, then builds its model
there, once.

The device in a job's spec was judged where the jobs were planned; on the job's own node it
is judged again with torch (is CUDA really there?) and, for a bare `cuda` on a host of
several GPUs, pinned to a free one whose slot the job holds until it ends. The placement
(device, dtype, GPU index, UUID and name) is decided here and nowhere else; the job hands it
on to what it writes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from vlmprof.device import resolve_device, resolve_placement
from vlmprof.models import build_adapter
from vlmprof.models.base import ModelAdapter, ModelSpec
from vlmprof.placement import Placement
from vlmprof.runtime.gpu_slot import claim_device

log = logging.getLogger(__name__)


@contextmanager
def claimed_placement(device: str, dtype: str) -> Iterator[Placement]:
    """This job's placement on the device it claims (checked with torch) in `dtype`; a
    GPU's slot is held until exit."""
    with claim_device(resolve_device(device)) as claimed:
        yield resolve_placement(claimed, dtype)


@contextmanager
def launched_model(spec: ModelSpec) -> Iterator[tuple[ModelAdapter, Placement]]:
    """The model `spec` names, built at the placement claimed for this job (held until exit),
    and that placement."""
    with claimed_placement(spec.device, spec.dtype) as placement:
        placed = dataclasses.replace(spec, device=placement.device, dtype=placement.dtype)
        adapter = build_adapter(placed)
        log.info("%s (%s) built on %s", spec.name, spec.preset, placement)
        yield adapter, placement

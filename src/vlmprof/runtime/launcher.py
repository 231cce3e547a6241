"""The launcher: a job claims its device, then builds its model there, once.

The device in a job's spec was judged where the jobs were planned; on the job's own node it
is judged again with torch (is CUDA really there?) and, for a bare `cuda` on a host of
several GPUs, pinned to a free one whose slot the job holds until it ends.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from vlmprof.device import resolve_device
from vlmprof.models import build_adapter
from vlmprof.models.base import ModelAdapter, ModelSpec
from vlmprof.runtime.gpu_slot import claim_device

log = logging.getLogger(__name__)


@contextmanager
def claimed_device(requested: str) -> Iterator[str]:
    """The device this job runs on, checked with torch; a GPU's slot is held until exit."""
    with claim_device(resolve_device(requested)) as device:
        yield device


@contextmanager
def launched_model(spec: ModelSpec) -> Iterator[ModelAdapter]:
    """The model `spec` names, built on the device claimed for this job (held until exit)."""
    with claimed_device(spec.device) as device:
        adapter = build_adapter(dataclasses.replace(spec, device=device))
        log.info("%s (%s) built on %s", spec.name, spec.preset, device)
        yield adapter

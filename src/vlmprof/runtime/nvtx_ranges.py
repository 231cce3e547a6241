"""NVTX ranges named like the stages, for Nsight Systems; no-ops without CUDA."""

from __future__ import annotations

import torch

try:
    import nvtx as _nvtx
except ImportError:  # the package is a dependency; its absence only disables ranges
    _nvtx = None


class NvtxRanges:
    """Push/pop NVTX ranges when enabled (CUDA present and the nvtx package importable)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and _nvtx is not None and torch.cuda.is_available()

    def push(self, name: str) -> None:
        """Open a range named `name`."""
        if self.enabled:
            _nvtx.push_range(name, domain="vlmprof")

    def pop(self) -> None:
        """Close the innermost range."""
        if self.enabled:
            _nvtx.pop_range(domain="vlmprof")

"""Where a job runs: its device, dtype and GPU, decided once when the job claims its device.

Torch-free, so run records, aggregation and the NVML side of telemetry can read it. A job's
placement is resolved by `vlmprof.device.resolve_placement` in the launcher and stored in
every run record; aggregation reads it back from there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vlmprof.typed_json import read_as


@dataclass(frozen=True)
class Placement:
    """A job's device (`cpu` or `cuda:N`, never a bare `cuda`) and dtype name; on a GPU its
    CUDA index as the job sees it (under CUDA_VISIBLE_DEVICES), its UUID and model name; the
    CUDA version the job's torch was built with and the cuDNN it loads (None where it has
    none, or in a placement recorded before they were)."""

    device: str
    dtype: str
    gpu_index: int | None = None
    gpu_uuid: str | None = None
    gpu_name: str | None = None
    cuda_version: str | None = None
    cudnn_version: int | None = None

    @property
    def on_gpu(self) -> bool:
        """Whether the job runs on a CUDA GPU."""
        return self.gpu_index is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "placement") -> Placement:
        """A placement read back from a run record's `placement` field, as the record itself
        reads it (`vlmprof.typed_json`): device and dtype required, every key of its kind;
        `where` names it in errors."""
        return read_as(cls, data, where)

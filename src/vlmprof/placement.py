"""Where a job runs: its device, dtype and GPU, decided once when the job claims its device.

Torch-free, so run records, aggregation and the NVML side of telemetry can read it. A job's
placement is resolved by `vlmprof.device.resolve_placement` in the launcher and stored in
every run record; aggregation reads it back from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Placement:
    """A job's device (`cpu` or `cuda:N`, never a bare `cuda`) and dtype name; on a GPU its
    CUDA index as the job sees it (under CUDA_VISIBLE_DEVICES), its UUID and model name."""

    device: str
    dtype: str
    gpu_index: int | None = None
    gpu_uuid: str | None = None
    gpu_name: str | None = None

    @property
    def on_gpu(self) -> bool:
        """Whether the job runs on a CUDA GPU."""
        return self.gpu_index is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Placement:
        """A placement read back from a run record's `placement` field."""
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"placement: {', '.join(missing)} missing in {dict(data)}")
        return cls(**{f.name: data[f.name] for f in fields(cls)})

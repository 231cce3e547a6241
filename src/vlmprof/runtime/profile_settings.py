"""What the timing pass does with each page, read from the run config.

Torch-free: the workflow reads these settings from the config where it plans the jobs. The
config schema holds every default; these fields have none of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProfileSettings:
    """What the timing pass does with each image."""

    run_id: str
    shard: int
    repeats: int
    warmup_rounds: int
    warmup_synthetic: bool
    warmup_per_image: bool
    max_new_tokens: int
    ignore_eos: bool
    max_pixels: int
    telemetry: bool
    telemetry_interval_ms: float
    telemetry_counter_interval_ms: float
    # The model's end-of-sequence token (None: it has none); known once the model is built.
    eos_id: int | None = None
    # NVTX ranges around the stages; benchmarks switch them off to measure their cost.
    nvtx: bool = True

    @staticmethod
    def run_settings(config: Mapping[str, Any]) -> dict[str, Any]:
        """The settings every shard of a run shares, from a validated config (defaults
        filled): what the planner passes to the timing jobs, and nothing else."""
        telemetry = config["telemetry"]
        return {
            "run_id": config["run_name"],
            "repeats": config["repeats"],
            "warmup_rounds": config["warmup_rounds"],
            "warmup_synthetic": config["warmup_synthetic"],
            "warmup_per_image": config["warmup_per_image"],
            "max_new_tokens": config["max_new_tokens"],
            "ignore_eos": config["ignore_eos"],
            "max_pixels": config["dataset"]["max_pixels"],
            "telemetry": telemetry["enabled"],
            "telemetry_interval_ms": telemetry["interval_ms"],
            "telemetry_counter_interval_ms": telemetry["counter_interval_ms"],
        }

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], shard: int, eos_id: int | None = None
    ) -> ProfileSettings:
        """The settings of one shard of the run a validated config describes."""
        return cls(**cls.run_settings(config), shard=shard, eos_id=eos_id)

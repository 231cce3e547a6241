"""What a run does with its model: the timing pass's settings, read from the run config.

Torch-free: the workflow reads these settings from the config where it plans the jobs. The
config schema holds every default; the fields with defaults of their own are the job's
(shard, eos_id, nvtx), the run's shape (batch size, workers, where pages are preprocessed),
whose defaults are the released flow a variant may switch, and each page's output length
(every page `max_new_tokens` by default), which every arm of a run shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from vlmprof.runtime.output_length import OutputLength


@dataclass(frozen=True)
class ProfileSettings:
    """A run's settings: what the timing pass does with each page, apart from the model
    (`models.base.ModelSpec` says what is built; this says how it is run)."""

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
    # Pages generated together: vision over all their views, one left-padded prefill, one
    # decode step per token for all of them (models/padded_batch.py). 1 is the released code.
    batch_size: int = 1
    # Processes loading and preprocessing the next pages while the GPU runs the current ones
    # (runtime/page_source.py); 0 does it inline, as the released code does.
    workers: int = 0
    # Where pages become pixel tensors: cpu (on the host, the released code) or gpu (on the
    # model's device; models/deepseek_ocr/device_preprocess.py).
    preprocess: str = "cpu"
    # How many tokens each page generates (runtime/output_length.py): every page
    # max_new_tokens (the released flow), a seeded draw per page, or its ground-truth text's.
    # Every arm of a run shares it, so a page has one length in all of them.
    output_length: OutputLength = OutputLength()
    # How many of the subset's pages the arm profiles, its first in selection order; None:
    # every page. A slow arm (the released path at 1,000 tokens a page) on a few pages
    # anchors fast arms that need many pages to fill their batches.
    pages: int | None = None

    def __post_init__(self) -> None:
        # A job's params and `dataclasses.asdict` hand the setting over as a mapping.
        if isinstance(self.output_length, Mapping):
            object.__setattr__(self, "output_length", OutputLength(**self.output_length))

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
            "batch_size": config["batch_size"],
            "workers": config["workers"],
            # No config key of its own: the released flow, which a variant may switch.
            "preprocess": RELEASED_SHAPE["preprocess"],
            "output_length": OutputLength.from_config(config["output_length"]).params(),
            "pages": config["pages"],
        }

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], shard: int, eos_id: int | None = None
    ) -> ProfileSettings:
        """The settings of one shard of the run a validated config describes."""
        return cls(**cls.run_settings(config), shard=shard, eos_id=eos_id)


# The run's shape at the released flow. A job's params leave these out at that value (they
# were model fields once, left out there too), so the default run's params text, and with
# it every finished job, stays what it was (Snakemake reruns a job whose params change).
RELEASED_SHAPE: dict[str, Any] = {
    item.name: item.default
    for item in fields(ProfileSettings)
    if item.name in ("batch_size", "workers", "preprocess", "pages")
}


# Settings added after runs were planned, at the value that keeps the released flow: the
# run's shape and every page generating max_new_tokens.
LATER_SETTINGS: dict[str, Any] = {**RELEASED_SHAPE, "output_length": OutputLength().params()}


def settings_params(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Run settings for a job's params: the settings added later left out at their released
    value, since `ProfileSettings(**params)` fills them back in."""
    return {
        key: value for key, value in settings.items() if LATER_SETTINGS.get(key, ...) != value
    }


def run_shape(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The run's shape (batch size, workers, preprocessing, pages) where it is not the released
    flow's: what metrics.json's resolved config adds to the model's spec."""
    return {key: value for key, value in settings_params(settings).items() if key in RELEASED_SHAPE}

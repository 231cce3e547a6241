"""The stages of a page, defined once: names, nesting, display names and definitions.

Every layer reads them from here. Prefill is the first forward pass from inputs on the
device to the first logits, vision included (so vision and its parts are nested in prefill,
and LLM prefill is prefill minus vision); decode is the token loop until the last token.
Loading and preprocessing run on the CPU before prefill and belong to neither.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage: its key (`<name>_ms` in records, `stage_ms[name]` in metrics.json)."""

    name: str
    label: str
    # The stage whose time already contains this one; None for a top-level stage.
    parent: str | None
    definition: str
    # Whether a run record holds `<name>_ms` directly (the others are derived).
    recorded: bool = True
    # Whether the stage runs on the host only (no GPU work), like reading the file.
    host_only: bool = False


STAGES: tuple[Stage, ...] = (
    Stage(
        "prefill",
        "prefill",
        None,
        "first forward pass, inputs on device to first logits (vision included)",
    ),
    Stage(
        "vision",
        "vision",
        "prefill",
        "the vision encoder: SAM + CLIP (or encoder) + projector; nested in prefill",
    ),
    Stage("sam", "SAM", "vision", "SAM ViT-B encoder with its 16x compressor; nested in vision"),
    Stage(
        "clip",
        "CLIP",
        "vision",
        "CLIP ViT-L fed by SAM features (DeepSeek-OCR-2: its Qwen2 visual encoder); "
        "nested in vision",
    ),
    Stage(
        "projector",
        "projector",
        "vision",
        "linear projector to the decoder width; nested in vision",
    ),
    Stage(
        "llm_prefill",
        "LLM prefill",
        "prefill",
        "prefill minus vision: the decoder over the whole prompt, and glue",
        recorded=False,
    ),
    Stage("decode", "decode", None, "token loop after the first token until the last one"),
    Stage(
        "decode_per_token",
        "decode per token (TPOT)",
        "decode",
        "one decode step (time per output token); nested in decode",
        recorded=False,
    ),
    Stage(
        "ttft",
        "time to first token (TTFT)",
        None,
        "time to first token: prefill plus sampling the first token",
    ),
    Stage(
        "load",
        "image load",
        None,
        "read and decode the image file (belongs to no stage)",
        host_only=True,
    ),
    Stage(
        "preprocess",
        "preprocess",
        None,
        "resize, crop and normalise the page (belongs to no stage)",
        host_only=True,
    ),
)

BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
# Every stage name, in reading order.
STAGE_NAMES: tuple[str, ...] = tuple(BY_NAME)
# Stage -> display name, and stage -> the stage whose time contains it.
STAGE_LABELS: dict[str, str] = {stage.name: stage.label for stage in STAGES}
STAGE_PARENTS: dict[str, str | None] = {stage.name: stage.parent for stage in STAGES}
STAGE_DEFINITIONS: dict[str, str] = {stage.name: stage.definition for stage in STAGES}
# Stages a run record holds as `<name>_ms`.
RECORDED_STAGES: tuple[str, ...] = tuple(stage.name for stage in STAGES if stage.recorded)
# Stages that run on the host only: reported, but no GPU comparison judges them.
HOST_STAGES: tuple[str, ...] = tuple(stage.name for stage in STAGES if stage.host_only)
# The parts of vision, each timed by a hook on its module.
VISION_PARTS: tuple[str, ...] = ("sam", "clip", "projector")
# The exclusive parts of a page's model time: they add up to prefill + decode.
EXCLUSIVE_STAGES: tuple[str, ...] = (*VISION_PARTS, "llm_prefill", "decode")


def label(name: str) -> str:
    """The display name of stage `name`."""
    return BY_NAME[name].label


def record_field(name: str) -> str:
    """The run-record field holding stage `name`'s time in milliseconds."""
    return f"{name}_ms"


def exclusive_parts(name: str) -> tuple[str, ...]:
    """The exclusive stages whose times add up to stage `name`'s (prefill: the vision parts
    and LLM prefill; decode: itself)."""

    def within(stage: str | None) -> bool:
        while stage is not None and stage != name:
            stage = BY_NAME[stage].parent
        return stage == name

    return tuple(stage for stage in EXCLUSIVE_STAGES if within(stage))

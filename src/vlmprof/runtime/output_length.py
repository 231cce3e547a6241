"""How many tokens each page generates: a run setting (`output_length` in the config).

Real pages end at different lengths, and a batch runs until its longest page ends, so the
lengths decide what static batching costs. `fixed` gives every page `max_new_tokens` (the
released flow, static batching's best case); `lognormal` draws each page's length from a
log-normal distribution, seeded by the page's id so every arm and repeat gives a page the
same length; `dataset` counts the tokens of the page's ground-truth text (OmniDocBench's
annotations, the text a synthetic page was drawn from) with the model's tokenizer, plus its
end-of-sequence token. Every length is capped at `max_new_tokens`.

Torch-free: the workflow reads it from the config where it plans the jobs.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the workflow plans with this module, without torch
    from vlmprof.models.base import ModelAdapter

KINDS = ("fixed", "lognormal", "dataset")


class OutputLengthError(ValueError):
    """Pages whose length cannot be set as configured; the message names the config key."""


@dataclass(frozen=True)
class OutputLength:
    """How a page's length (tokens generated, end-of-sequence included) is set."""

    kind: str = "fixed"
    # The log-normal's mean (tokens, before the cap) and the standard deviation of the
    # logarithm of a length (0.5: the middle half of pages within about 0.7x-1.4x the median).
    mean: float = 16.0
    spread: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OutputLengthError(
                f"output_length.kind: unknown {self.kind!r}; one of {', '.join(KINDS)}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> OutputLength:
        """The setting of a validated `output_length:` section; only the log-normal keeps
        its parameters, so changing them under another kind changes no job."""
        if section["kind"] != "lognormal":
            return cls(section["kind"])
        return cls("lognormal", float(section["mean"]), float(section["spread"]), section["seed"])

    def params(self) -> dict[str, Any]:
        """The setting as a job's params take it (plain JSON)."""
        return asdict(self)

    def draw(self, image_id: str, cap: int) -> int:
        """Page `image_id`'s log-normal length, at least 1 and at most `cap`: the same in
        every process, arm and repeat (seeded by the run's seed and the page's id)."""
        generator = np.random.default_rng([self.seed, zlib.crc32(image_id.encode("utf-8"))])
        median = math.log(self.mean) - self.spread**2 / 2  # so that the mean is `mean`
        return min(max(round(float(generator.lognormal(median, self.spread))), 1), cap)

    def page_lengths(
        self,
        image_ids: Iterable[str],
        cap: int,
        texts: Mapping[str, str] | None = None,
        adapter: ModelAdapter | None = None,
    ) -> PageLengths:
        """Each page's length, capped at `cap` (`max_new_tokens`). `dataset` needs every
        page's ground-truth text (`texts`, by image id) and the model (`adapter`) whose
        tokenizer counts it: a page's length is its text's tokens and an end-of-sequence."""
        ids = list(image_ids)
        if self.kind == "fixed":
            return PageLengths(dict.fromkeys(ids, cap), self.describe(cap))
        if self.kind == "lognormal":
            return PageLengths({i: self.draw(i, cap) for i in ids}, self.describe(cap))
        if texts is None or adapter is None:
            raise OutputLengthError(
                "output_length.kind: dataset needs each page's ground-truth text and the "
                "model's tokenizer; use lognormal or fixed here"
            )
        missing = [image_id for image_id in ids if image_id not in texts]
        if missing:
            raise OutputLengthError(
                f"output_length.kind: dataset: page {missing[0]} has no ground-truth text; "
                "rerun the dataset step (its manifest keeps each page's text)"
            )
        counted = {i: min(adapter.count_text_tokens(texts[i]) + 1, cap) for i in ids}
        return PageLengths(counted, self.describe(cap, adapter.text_tokenizer))

    def describe(self, cap: int, tokenizer: str | None = None) -> str:
        """How the lengths are set, as records keep it; `tokenizer` names the one that
        counted a `dataset` text (the model's own, or a stand-in)."""
        if self.kind == "fixed":
            return f"fixed: every page max_new_tokens ({cap})"
        if self.kind == "lognormal":
            return (
                f"lognormal: mean {self.mean:g}, spread {self.spread:g}, seed {self.seed}, "
                f"capped at {cap}"
            )
        return f"dataset: ground-truth text through the {tokenizer} tokenizer, capped at {cap}"


@dataclass(frozen=True)
class PageLengths:
    """Each page's length in tokens by image id, and how they were set (`describe`)."""

    tokens: Mapping[str, int]
    source: str

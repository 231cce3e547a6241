"""Run records of pages in gundam mode, their view facts computed as preprocessing does."""

from __future__ import annotations

from typing import Any

from vlmprof.models.deepseek_ocr.views import plan_views
from vlmprof.models.prompt_tokenizer import prompt_length
from vlmprof.records import RunRecord


def page_facts(width: int, height: int) -> dict[str, Any]:
    """Mode, crops, image tokens and prefill length of a width x height page in gundam mode."""
    plan = plan_views(width, height, "gundam")
    return {
        "mode": "gundam",
        "n_crops": plan.n_crops,
        "image_tokens": plan.image_tokens,
        "prefill_len": prompt_length(plan.image_tokens),
    }


def page_record(
    image_id: str, size: tuple[int, int], repeat: int = 0, run_id: str = "r", **values: Any
) -> dict[str, Any]:
    """An ok run record (as a dict) of a page of `size` (width, height) with `values`
    (times, tokens, ...) besides its view facts."""
    return RunRecord(
        run_id=run_id, image_id=image_id, repeat=repeat, **page_facts(*size), **values
    ).to_dict()

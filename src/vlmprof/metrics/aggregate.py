"""Aggregate run records into per-stage timing statistics, counts and a repeatability check.

Prefill contains vision (sam, clip, projector run inside the first forward pass; the nesting
is `vlmprof.stages`'), so the decoder's own share of prefill is derived as `prefill - vision`
and stage times are never added across nesting levels.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from vlmprof.metrics.end_to_end import DEFINITION as END_TO_END
from vlmprof.metrics.end_to_end import end_to_end
from vlmprof.metrics.stats import finite_values, summarize
from vlmprof.stages import RECORDED_STAGES, STAGE_PARENTS, record_field

# Stage -> the stage whose time already contains it (None for top-level stages), every
# stage in reading order.
STAGE_NESTING: dict[str, str | None] = STAGE_PARENTS

# A page's shard (the job it ran in: the variants comparison measures drift per shard) and
# its view facts.
PER_IMAGE_FACTS: tuple[str, ...] = (
    "shard",
    "mode",
    "n_crops",
    "image_tokens",
    "prefill_len",
    "tokens",
)
UNCATEGORISED = "uncategorised"
PER_CATEGORY_COLUMNS: tuple[str, ...] = (
    "category",
    "stage",
    "mean (ms)",
    "cv",
    "n",
    "ok pages",
    "failed pages",
)


def ok_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records whose status is "ok"."""
    return [r for r in records if r.get("status", "ok") == "ok"]


def llm_prefill_ms(record: dict[str, Any]) -> float | None:
    """Decoder part of prefill: prefill minus the vision time nested inside it."""
    prefill, vision = record.get("prefill_ms"), record.get("vision_ms")
    if prefill is None or vision is None:
        return None
    return float(prefill) - float(vision)


def record_stage_ms(record: dict[str, Any]) -> dict[str, float | None]:
    """Time of each stage of one record (decode_per_token is the mean of its steps)."""
    values: dict[str, float | None] = {
        stage: record.get(record_field(stage)) for stage in RECORDED_STAGES
    }
    values["llm_prefill"] = llm_prefill_ms(record)
    steps = finite_values(record.get("decode_step_ms") or [])
    values["decode_per_token"] = float(steps.mean()) if steps.size else None
    return {stage: values[stage] for stage in STAGE_NESTING}


def batch_size(record: dict[str, Any]) -> int:
    """Pages generated together with the record's page (records before batching ran one)."""
    return int(record.get("batch_size") or 1)


def page_share(batch_value: float | None, pages: float) -> float | None:
    """A page's share of what its batch of `pages` spent together (a stage's time, energy,
    weight reads): split evenly. The one place a batch's figure becomes a page's; a record
    keeps its batch's stage times, what its page waited."""
    return None if batch_value is None else float(batch_value) / pages


# What each aggregated rate counts, as metrics.json states it beside them: end to end first
# (what a user gets), then the GPU side and decode only, each a total over a total.
RATES = {
    "output_tokens_per_s_end_to_end": (
        "output tokens/s end to end: the tokens of each batch's first repeat (ok records) "
        "over the run's wall time on " + END_TO_END
    ),
    "pages_per_s_end_to_end": "pages/s end to end: those pages over the same wall time",
    "output_tokens_per_s_gpu_side": (
        "output tokens/s on the GPU side (a CPU run's processor): every token the ok records "
        "generated, the first (from prefill) included, over their prefill and decode time "
        "summed (a batch's time once, shared by its pages), the host's loading and "
        "preprocessing left out; shards' times add up, so this is one device's rate"
    ),
    "pages_per_s_gpu_side": "pages/s on the GPU side: the ok records over the same time",
    "decode_tokens_per_s": (
        "decode tokens/s, decode only: the tokens generated in decode (tokens - 1 per page: the "
        "first comes from prefill) summed over the ok records, over their decode time summed "
        "(a batch's time once, shared by its pages); prefill and the host left out"
    ),
}


def _per_s(amount: float, ms: float) -> float | None:
    """A total over a total time in ms, per second; None without time."""
    return amount / ms * 1000.0 if ms > 0 else None


def decode_tokens_per_s(records: list[dict[str, Any]]) -> float | None:
    """Tokens generated in decode over decode time, total over total across `records` (each
    page's share of its batch's time, so a batch's time counts once); None without any."""
    timed = [r for r in records if r.get("tokens") and r.get("decode_ms") is not None]
    tokens = sum(r["tokens"] - 1 for r in timed)
    return _per_s(tokens, sum(page_share(r["decode_ms"], batch_size(r)) for r in timed))


def _gpu_timed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that timed both prefill and decode."""
    return [r for r in records if None not in (r.get("prefill_ms"), r.get("decode_ms"))]


def _gpu_side_ms(timed: list[dict[str, Any]]) -> float:
    """Prefill and decode time of `timed`, a batch's time once (each page its share)."""
    return sum(page_share(r["prefill_ms"] + r["decode_ms"], batch_size(r)) for r in timed)


def output_tokens_per_s_gpu_side(records: list[dict[str, Any]]) -> float | None:
    """Every token generated over prefill and decode time (GPU side), total over total
    across `records` (a batch's time counts once); None without any."""
    timed = _gpu_timed(records)
    return _per_s(sum(int(r.get("tokens") or 0) for r in timed), _gpu_side_ms(timed))


def pages_per_s_gpu_side(records: list[dict[str, Any]]) -> float | None:
    """Pages over their prefill and decode time (GPU side), total over total across
    `records` (a batch's time counts once); None without any."""
    timed = _gpu_timed(records)
    return _per_s(len(timed), _gpu_side_ms(timed))


def end_to_end_rates(section: dict[str, Any] | None) -> dict[str, float | None]:
    """Output tokens/s and pages/s over the run's wall time (`metrics.end_to_end`); None
    each for records from before their host-clock spans were kept."""
    if section is None:
        return {"output_tokens_per_s_end_to_end": None, "pages_per_s_end_to_end": None}
    ms = section["wall_s"] * 1000.0
    return {
        "output_tokens_per_s_end_to_end": _per_s(section["tokens"], ms),
        "pages_per_s_end_to_end": _per_s(section["pages"], ms),
    }


def _stage_samples(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """All samples of each stage over `records`; decode steps are pooled across records."""
    samples: dict[str, list[float]] = {stage: [] for stage in STAGE_NESTING}
    for record in records:
        for stage, value in record_stage_ms(record).items():
            if stage != "decode_per_token" and value is not None:
                samples[stage].append(float(value))
        samples["decode_per_token"].extend(float(v) for v in record.get("decode_step_ms") or [])
    return samples


def _image_repeatability(values: list[float]) -> dict[str, float] | None:
    """Relative spread, CV and largest deviation from the mean of one image's repeats."""
    array = finite_values(values)
    if array.size < 2 or array.mean() == 0:
        return None
    mean = float(array.mean())
    return {
        "spread": float(array.max() - array.min()) / mean,
        "cv": float(array.std(ddof=1)) / mean,
        "deviation": float(np.abs(array - mean).max()) / mean,
    }


def repeatability(records: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """Per stage, how far repeats of the same image differ, and whether within `tolerance`.

    A stage passes when no repeat of any image deviates from that image's mean by more
    than `tolerance` (relative). Images with fewer than two ok repeats are not judged.
    """
    by_image: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for stage, value in record_stage_ms(record).items():
            if value is not None:
                by_image[record["image_id"]][stage].append(float(value))
    stages: dict[str, dict[str, Any]] = {}
    for stage in STAGE_NESTING:
        per_image = {
            image_id: result
            for image_id, values in by_image.items()
            if (result := _image_repeatability(values.get(stage, []))) is not None
        }
        if not per_image:
            continue
        worst = max(per_image, key=lambda image_id: per_image[image_id]["deviation"])
        spreads = [r["spread"] for r in per_image.values()]
        cvs = [r["cv"] for r in per_image.values()]
        stages[stage] = {
            "max_spread": max(spreads),
            "mean_spread": float(np.mean(spreads)),
            "max_cv": max(cvs),
            "mean_cv": float(np.mean(cvs)),
            "max_deviation": per_image[worst]["deviation"],
            "worst_image": worst,
            "images": len(per_image),
            "pass": per_image[worst]["deviation"] <= tolerance,
        }
    result: dict[str, Any] = {
        "tolerance": tolerance,
        "stages": stages,
        "failing_stages": [stage for stage, s in stages.items() if not s["pass"]],
        "pass": all(s["pass"] for s in stages.values()) if stages else None,
    }
    if not stages:
        result["reason"] = "no image has two or more ok repeats"
    return result


def aggregate_records(records: list[dict[str, Any]], tolerance: float = 0.10) -> dict[str, Any]:
    """Statistics of every stage over the ok records, counts, failures and repeatability.

    Rates are totals over totals (`RATES` says what each counts, and `aggregates.rates`
    repeats it): output tokens/s and pages/s end to end (over `end_to_end`, the run's wall
    time on the host's clock) and on the GPU side, and decode tokens/s; stage times are the
    batch's, what each of its pages waited. `stage_ms` holds only stages that
    at least one ok record measured. `counts.images_failed` is the number of pages with at
    least one failed record.
    """
    good = ok_records(records)
    samples = _stage_samples(good)
    wall = end_to_end(good)
    aggregates = {
        "prefill_ms": summarize(r.get("prefill_ms") for r in good),
        "decode_ms": summarize(r.get("decode_ms") for r in good),
        "tokens": summarize(r.get("tokens") for r in good),
        **end_to_end_rates(wall),
        "output_tokens_per_s_gpu_side": output_tokens_per_s_gpu_side(good),
        "pages_per_s_gpu_side": pages_per_s_gpu_side(good),
        "decode_tokens_per_s": decode_tokens_per_s(good),
        "rates": dict(RATES),
        "end_to_end": wall,
        "batch_size": summarize(batch_size(r) for r in good),
        "input_wait_ms": summarize(r.get("input_wait_ms") for r in good),
        # Each shard's warm-up: compilation and graph capture, and the warm-up generations.
        "warmup_ms": summarize(r.get("warmup_ms") for r in records),
        "stage_ms": {stage: summarize(values) for stage, values in samples.items() if values},
    }
    failures = [
        {"image_id": r.get("image_id"), "repeat": r.get("repeat"), "error": r.get("error")}
        for r in records
        if r.get("status", "ok") != "ok"
    ]
    counts = {
        "records": len(records),
        "ok": len(good),
        "error": len(failures),
        "images": len({r.get("image_id") for r in records}),
        "images_failed": len({f["image_id"] for f in failures}),
        "repeats": len({r.get("repeat") for r in records}),
    }
    return {
        "aggregates": aggregates,
        "counts": counts,
        "failures": failures,
        "repeatability": repeatability(good, tolerance),
    }


def stage_table(agg: dict[str, Any]) -> pd.DataFrame:
    """One row per measured stage (from `aggregate_records`), units in column names."""
    rows = []
    for stage, stats in agg["aggregates"]["stage_ms"].items():
        rows.append(
            {
                "stage": stage,
                "mean (ms)": stats["mean"],
                "std (ms)": stats["std"],
                "cv": stats["cv"],
                "p50 (ms)": stats["p50"],
                "p90 (ms)": stats["p90"],
                "n": stats["n"],
                "nested_in": STAGE_NESTING[stage],
            }
        )
    columns = ["mean (ms)", "std (ms)", "cv", "p50 (ms)", "p90 (ms)", "n", "nested_in"]
    return pd.DataFrame(rows, columns=["stage", *columns]).set_index("stage")


def per_image_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean time of each stage per image over its ok repeats, with the image's shard and view
    facts."""
    rows: dict[str, dict[str, Any]] = {}
    stage_values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in ok_records(records):
        image_id = record["image_id"]
        row = rows.setdefault(image_id, {"image_id": image_id, "repeats": 0})
        row["repeats"] += 1
        for fact in PER_IMAGE_FACTS:
            if row.get(fact) is None:
                row[fact] = record.get(fact)
        for stage, value in record_stage_ms(record).items():
            if value is not None:
                stage_values[image_id][stage].append(float(value))
    measured = [s for s in STAGE_NESTING if any(s in v for v in stage_values.values())]
    for image_id, row in rows.items():
        for stage in measured:
            values = stage_values[image_id].get(stage)
            row[f"{stage} (ms)"] = float(np.mean(values)) if values else None
    columns = ["image_id", *PER_IMAGE_FACTS, "repeats", *(f"{s} (ms)" for s in measured)]
    return pd.DataFrame(list(rows.values()), columns=columns).set_index("image_id")


def per_category_table(records: list[dict[str, Any]], categories: dict[str, str]) -> pd.DataFrame:
    """Per category and stage: mean (ms), CV and samples over the category's ok records
    (decode steps pooled, as in `stage_table`), with its ok and failed page counts.

    `categories` maps image ids to categories (pages missing from it are uncategorised). A
    page is ok when at least one of its records is, failed when at least one is not (both,
    when only some repeats failed). Every category gets a row for each stage any ok record
    of the run measured (prefill and decode when none did), so one whose pages all failed
    still shows its count, with empty statistics.
    """
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_category[categories.get(record.get("image_id"), UNCATEGORISED)].append(record)
    measured = [s for s, values in _stage_samples(ok_records(records)).items() if values]
    rows = []
    for category in sorted(by_category):
        group = by_category[category]
        good = ok_records(group)
        ok_pages = len({r.get("image_id") for r in good})
        failed_pages = len({r.get("image_id") for r in group if r.get("status", "ok") != "ok"})
        samples = _stage_samples(good)
        for stage in measured or ["prefill", "decode"]:
            stats = summarize(samples[stage])
            rows.append(
                {
                    "category": category,
                    "stage": stage,
                    "mean (ms)": stats["mean"],
                    "cv": stats["cv"],
                    "n": stats["n"],
                    "ok pages": ok_pages,
                    "failed pages": failed_pages,
                }
            )
    return pd.DataFrame(rows, columns=list(PER_CATEGORY_COLUMNS))

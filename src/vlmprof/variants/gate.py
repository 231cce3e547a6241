"""Correctness gate: a variant must compute the baseline's outputs before it is timed as one.

Every arm keeps, per page and step, its logits at the probe ids (the baseline's top-k and a
fixed vocabulary sample; `runtime.generate.GenerationCapture`). The baseline generates
freely; every other arm, and an oracle (the released code path with the same weights in
float64), is teacher-forced on the baseline's tokens, so all of them are compared at every
step of one sequence, not only up to the first token where greedy picks part.

Each arm's error at a step is the largest difference of its probe logits from the
oracle's, as a fraction of the oracle's largest; the baseline's own error is the noise
floor the same run measures. A page passes when

- the code path holds: at the check precision (float32, or the run's own when it is
  float32 or wider) the variant's largest error over the page's steps is within
  `code_path` times the baseline's (a wrong mask, position or cache write moves the logits
  by thousands of times float32 rounding; a right path by about its rounding), and
- the run's precision holds: where the run is narrower (bfloat16), the variant's
  root-mean-square error over the page's steps is within `precision` times the
  baseline's at that precision.

Whether its greedy picks equal the baseline's tokens is kept as information: after a
near-tie they carry none.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

Outputs = Mapping[str, Mapping[str, torch.Tensor]]
# The saved tensors a teacher-forced comparison needs.
NEEDED = ("tokens", "top_indices", "probe_values")
# Below this, an error is float64 rounding: the floor a ratio divides by.
ERROR_FLOOR = 1e-12


@dataclass(frozen=True)
class GateFactors:
    """How far a variant's error may exceed the baseline's own: per page, its largest step
    error at the check precision (`code_path`), its RMS step error at the run's precision
    (`precision`)."""

    code_path: float
    precision: float


class GateInputError(ValueError):
    """Saved outputs the gate cannot compare (missing tensors: made by an older version)."""


def merged_outputs(paths: Iterable[str | Path]) -> dict[str, dict[str, torch.Tensor]]:
    """Every shard's saved outputs in one mapping (image_id -> tensors), read on the CPU;
    the shards hold disjoint pages."""
    outputs: dict[str, dict[str, torch.Tensor]] = {}
    for path in paths:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        for image, saved in loaded.items():
            missing = [key for key in NEEDED if key not in saved]
            if missing:
                raise GateInputError(
                    f"{path}: page {image} has no {', '.join(missing)}; it was made by an "
                    "older version: rerun its profile step"
                )
        outputs.update(loaded)
    return outputs


Saved = Mapping[str, torch.Tensor]


def step_errors(arm: Saved, oracle: Saved) -> torch.Tensor:
    """Per step, the largest difference of `arm`'s probe logits from the oracle's, as a
    fraction of the oracle's largest probe logit at that step (steps both have)."""
    steps = min(arm["probe_values"].shape[0], oracle["probe_values"].shape[0])
    truth = oracle["probe_values"][:steps].double()
    scale = truth.abs().amax(dim=1).clamp(min=ERROR_FLOOR)
    return (arm["probe_values"][:steps].double() - truth).abs().amax(dim=1) / scale


def _ratio(variant: float, baseline: float) -> float:
    """variant / baseline error, both floored at float64 rounding."""
    return max(variant, ERROR_FLOOR) / max(baseline, ERROR_FLOOR)


def _picks(base: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """How the variant's own picks (fed the baseline's tokens) match the baseline's tokens:
    the first step where they part (None: never), the share of steps with the same pick,
    and the mean overlap of the two top-k sets."""
    steps = min(base["tokens"].numel(), other["tokens"].numel())
    same = base["tokens"][:steps] == other["tokens"][:steps]
    differ = (~same).nonzero()
    top_base, top_other = base["top_indices"][:steps], other["top_indices"][:steps]
    overlap = (top_base[:, :, None] == top_other[:, None, :]).any(dim=2).float().mean(dim=1)
    return {
        "same_picks": bool(same.all()) and base["tokens"].numel() == other["tokens"].numel(),
        "first_different_pick": int(differ[0]) if differ.numel() else None,
        "top1_agreement": float(same.float().mean()) if steps else None,
        "topk_overlap": float(overlap.mean()) if steps else None,
    }


def judge_page(
    baseline: Mapping[str, torch.Tensor],
    variant: Mapping[str, torch.Tensor],
    oracle: Mapping[str, torch.Tensor],
    factors: GateFactors,
    checks: tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """One page's verdict and its numbers. `baseline` and `variant` are the runs at the
    run's precision; `checks` (baseline, variant) the same arms at the check precision when
    the run is narrower than it (None: the run's own outputs are the check)."""
    steps = int(baseline["tokens"].numel())
    base_check, variant_check = checks if checks is not None else (baseline, variant)
    result: dict[str, Any] = {"steps": steps, **_picks(baseline, variant)}
    if variant_check["probe_values"].shape[0] < steps:
        return result | {
            "ok": False,
            "reason": f"{variant_check['probe_values'].shape[0]} of {steps} steps ran",
        }
    code_base = float(step_errors(base_check, oracle).max())
    code_variant = float(step_errors(variant_check, oracle).max())
    result |= {
        "code_path_error": code_variant,
        "code_path_baseline_error": code_base,
        "code_path_ratio": _ratio(code_variant, code_base),
    }
    ok = result["code_path_ratio"] <= factors.code_path
    if checks is not None:
        precision_base = float(step_errors(baseline, oracle).pow(2).mean().sqrt())
        precision_variant = float(step_errors(variant, oracle).pow(2).mean().sqrt())
        result |= {
            "precision_error": precision_variant,
            "precision_baseline_error": precision_base,
            "precision_ratio": _ratio(precision_variant, precision_base),
        }
        ok = ok and result["precision_ratio"] <= factors.precision
    return result | {"ok": ok}


def _largest(pages: Mapping[str, Mapping[str, Any]], key: str) -> float | None:
    """The largest `key` over the pages that have it."""
    values = [page[key] for page in pages.values() if page.get(key) is not None]
    return max(values) if values else None


def criterion(
    factors: GateFactors,
    checked_precision: bool,
    steps: int | None = None,
    reference: str = "the baseline",
    sampled: tuple[int, int] | None = None,
) -> str:
    """What "passed" means, in one sentence; `reference` names the arm the variant is fed
    and judged against; `sampled` (pages judged, pages run) when the gate judged a sample."""
    every = f"every one of its {steps} steps" if steps else "every step"
    pages = "every page"
    if sampled is not None:
        pages = f"each of the run's first {sampled[0]} of {sampled[1]} pages (the gate's sample)"
    text = (
        f"fed {reference}'s tokens, at {every} of {pages} the variant's logits stay as "
        "close to a float64 run of the released code with the same weights as "
        f"{reference}'s own: its largest error within {factors.code_path:g}x "
        f"{reference}'s at the check precision (float32)"
    )
    if checked_precision:
        text += f", and its RMS error within {factors.precision:g}x at the run's precision"
    return text


def judge_variant(
    name: str,
    baseline: Outputs,
    variant: Outputs,
    oracle: Outputs,
    factors: GateFactors,
    checks: tuple[Outputs, Outputs] | None = None,
    did_not_fit: Collection[str] = (),
    reference: str = "the baseline",
    sample: Collection[str] | None = None,
) -> dict[str, Any]:
    """The gate verdict of a variant over every page the baseline (the arm it is judged
    against, named `reference` in the criterion) has outputs for, or over those in the
    gate's `sample` when one is given.

    `checks` (baseline, variant at the check precision) are given when the run is
    narrower than float32. Pages in `did_not_fit` (their batch ran out of the device's
    memory: a finding of the variant's batch size, not a wrong output) have no output to
    judge; the verdict is then `did_not_fit`, unless a page that ran failed."""
    images = sorted(image for image in baseline if sample is None or image in sample)
    unfit = [image for image in images if image in did_not_fit and image not in variant]
    sides = (variant, oracle, *(checks or ()))
    missing = [
        image
        for image in images
        if image not in unfit and any(image not in side for side in sides)
    ]
    pages = {
        image: judge_page(
            baseline[image],
            variant[image],
            oracle[image],
            factors,
            None if checks is None else (checks[0][image], checks[1][image]),
        )
        for image in images
        if image not in missing and image not in unfit
    }
    steps = max((page["steps"] for page in pages.values()), default=None)
    sampled = None if sample is None else (len(images), len(baseline))
    verdict: dict[str, Any] = {
        "variant": name,
        "method": "teacher-forced",
        "pages": len(images),
        "pages_same_picks": sum(page["same_picks"] for page in pages.values()),
        "factors": asdict(factors),
        "code_path_ratio": _largest(pages, "code_path_ratio"),
        "precision_ratio": _largest(pages, "precision_ratio"),
        "criterion": criterion(factors, checks is not None, steps, reference, sampled),
        "page_results": pages,
        "pages_in_run": len(baseline),
        "pages_did_not_fit": unfit,
    }
    return verdict | _outcome(verdict, missing, unfit, factors)


def _outcome(
    verdict: Mapping[str, Any], missing: list[str], unfit: list[str], factors: GateFactors
) -> dict[str, str]:
    """A verdict's status and detail from its judged pages: failed (no page, a page
    without output or one beyond the limits), did_not_fit, or passed with its margin."""
    pages = verdict["page_results"]
    if not verdict["pages"]:
        return {
            "status": "failed",
            "detail": "the baseline saved no reference outputs (every page failed?)",
        }
    failed = {image: page for image, page in pages.items() if not page["ok"]}
    if missing or failed:
        reasons = [f"{len(missing)} page(s) without output ({', '.join(missing[:3])})"]
        reasons = reasons if missing else []
        reasons += [_failure(image, page, factors) for image, page in list(failed.items())[:3]]
        return {"status": "failed", "detail": "; ".join(reasons)}
    if unfit:
        ran = f"; the {len(pages)} that ran: {margin(verdict)}" if pages else ""
        detail = f"{len(unfit)} of {verdict['pages']} pages did not fit (out of memory){ran}"
        return {"status": "did_not_fit", "detail": detail}
    return {"status": "passed", "detail": margin(verdict)}


def _failure(image: str, page: Mapping[str, Any], factors: GateFactors) -> str:
    """Why one page failed, with its numbers."""
    if "reason" in page:
        return f"{image}: {page['reason']}"
    parts = []
    if page["code_path_ratio"] > factors.code_path:
        parts.append(
            f"largest logit error {page['code_path_error']:.3g} of the logit range, "
            f"{page['code_path_ratio']:.3g}x the baseline's (limit {factors.code_path:g}x)"
        )
    if page.get("precision_ratio") is not None and page["precision_ratio"] > factors.precision:
        parts.append(
            f"RMS logit error at the run's precision {page['precision_ratio']:.3g}x the "
            f"baseline's (limit {factors.precision:g}x)"
        )
    return f"{image}: " + "; ".join(parts)


def margin(verdict: Mapping[str, Any]) -> str:
    """The measured margin of a passed verdict: the largest ratios against their limits."""
    factors = verdict["factors"]
    text = (
        f"largest error {verdict['code_path_ratio']:.3g}x the baseline's at the check "
        f"precision (limit {factors['code_path']:g}x)"
    )
    if verdict.get("precision_ratio") is not None:
        text += (
            f", RMS error {verdict['precision_ratio']:.3g}x at the run's precision "
            f"(limit {factors['precision']:g}x)"
        )
    same, judged = verdict["pages_same_picks"], len(verdict["page_results"])
    return text + f"; greedy picks equal the baseline's on {same} of {judged} pages"


def not_applicable(name: str, reason: str) -> dict[str, Any]:
    """The verdict of a sweep point: a different workload has no baseline outputs to match."""
    return {
        "variant": name,
        "status": "not_applicable",
        "method": None,
        "criterion": "a different workload: compared, not gated",
        "pages": 0,
        "pages_same_picks": 0,
        "factors": None,
        "code_path_ratio": None,
        "precision_ratio": None,
        "detail": reason,
    }

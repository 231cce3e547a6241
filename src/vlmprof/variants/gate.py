"""Correctness gate: a variant must produce the baseline's outputs before it is timed as one.

Both runs save, per page, the greedy tokens, the first step's logits and each step's top-k
logits. A page passes when its tokens are identical, or when they first differ at a
near-tie: the variant picked one of the baseline's top-k there whose logit is within the
tolerance of the baseline's choice (bf16 reordering can flip such ties, and random weights
in bf16 give exact ties between several tokens). In every case the first-step
logits must agree within the tolerance. Tolerances are relative to the largest absolute
first-step logit of the baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

Outputs = Mapping[str, Mapping[str, torch.Tensor]]


def merged_outputs(paths: Iterable[str | Path]) -> dict[str, dict[str, torch.Tensor]]:
    """Every shard's saved reference outputs in one mapping (image_id -> tensors), read on
    the CPU; the shards hold disjoint pages."""
    outputs: dict[str, dict[str, torch.Tensor]] = {}
    for path in paths:
        outputs.update(torch.load(path, map_location="cpu", weights_only=True))
    return outputs


def _first_divergence(base: torch.Tensor, other: torch.Tensor) -> int | None:
    """Index of the first differing token (or the shorter length), None when identical."""
    length = min(base.numel(), other.numel())
    differ = (base[:length] != other[:length]).nonzero()
    if differ.numel():
        return int(differ[0])
    return None if base.numel() == other.numel() else length


def judge_page(
    base: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor], tolerance: float
) -> dict[str, Any]:
    """One page's verdict: identical, near-tie divergence, or a failure with its numbers."""
    scale = float(base["first_logits"].abs().max()) or 1.0
    logit_diff = float((base["first_logits"] - other["first_logits"]).abs().max())
    result: dict[str, Any] = {
        "max_abs_logit_diff": logit_diff,
        "relative_logit_diff": logit_diff / scale,
        "identical": False,
        "diverged_at": None,
        "tie_gap": None,
    }
    step = _first_divergence(base["tokens"], other["tokens"])
    logits_ok = result["relative_logit_diff"] <= tolerance
    if step is None:
        result["identical"] = True
        result["ok"] = logits_ok
        return result
    result["diverged_at"] = step
    near_tie = False
    if step < base["top_indices"].shape[0] and step < other["tokens"].numel():
        values, indices = base["top_values"][step], base["top_indices"][step]
        chosen = (indices == int(other["tokens"][step])).nonzero()
        if chosen.numel():
            gap = float(values[0] - values[int(chosen[0])]) / scale
            result["tie_gap"] = gap
            near_tie = gap <= tolerance
    result["ok"] = logits_ok and near_tie
    return result


def judge_variant(
    name: str, baseline: Outputs, variant: Outputs, tolerance: float
) -> dict[str, Any]:
    """The gate verdict of a variant over every page the baseline has outputs for."""
    missing = sorted(set(baseline) - set(variant))
    pages = {
        image: judge_page(baseline[image], variant[image], tolerance)
        for image in sorted(set(baseline) & set(variant))
    }
    identical = sum(page["identical"] for page in pages.values())
    failed = {image: page for image, page in pages.items() if not page["ok"]}
    max_abs = max((page["max_abs_logit_diff"] for page in pages.values()), default=None)
    max_rel = max((page["relative_logit_diff"] for page in pages.values()), default=None)
    verdict: dict[str, Any] = {
        "variant": name,
        "pages": len(baseline),
        "pages_identical": identical,
        "max_abs_logit_diff": max_abs,
        "relative_logit_diff": max_rel,
        "tolerance": tolerance,
        "page_results": pages,
    }
    if not baseline:
        return verdict | {
            "status": "failed",
            "criterion": "no baseline outputs to compare with",
            "detail": "the baseline saved no reference outputs (every page failed?)",
        }
    if missing or failed:
        reasons = (
            [f"{len(missing)} page(s) without output ({', '.join(missing[:3])})"] if missing else []
        )
        for image, page in list(failed.items())[:3]:
            if page["diverged_at"] is None:
                reasons.append(
                    f"{image}: first-step logits differ by {page['relative_logit_diff']:.3g}"
                    f" of their range (tolerance {tolerance:g})"
                )
            else:
                gap = page["tie_gap"]
                reasons.append(
                    f"{image}: tokens diverge at step {page['diverged_at']}"
                    + (
                        f" to a token {gap:.3g} below the baseline's choice"
                        if gap is not None
                        else " to a token outside the baseline's top candidates"
                    )
                    + f", first-step logits differ by {page['relative_logit_diff']:.3g}"
                )
        return verdict | {
            "status": "failed",
            "criterion": "tokens identical, or diverging only at a near-tie, with first-step"
            f" logits within {tolerance:g} of their range",
            "detail": "; ".join(reasons),
        }
    if identical == len(pages):
        criterion = f"greedy tokens identical on all {len(pages)} pages"
    else:
        criterion = (
            f"greedy tokens identical on {identical} of {len(pages)} pages; the others diverge"
            f" only at a near-tie (a token within {tolerance:g} of the baseline's choice)"
        )
    return verdict | {
        "status": "passed",
        "criterion": criterion,
        "detail": f"first-step logits within {max_rel:.3g} of their range"
        f" (tolerance {tolerance:g})",
    }


def not_applicable(name: str, reason: str) -> dict[str, Any]:
    """The verdict of a sweep point: a different workload has no baseline outputs to match."""
    return {
        "variant": name,
        "status": "not_applicable",
        "criterion": "a different workload: compared, not gated",
        "pages": 0,
        "pages_identical": 0,
        "max_abs_logit_diff": None,
        "relative_logit_diff": None,
        "tolerance": None,
        "detail": reason,
    }

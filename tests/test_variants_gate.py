"""Correctness gate: identical tokens pass, near-ties pass, real differences fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vlmprof.variants.gate import judge_page, judge_variant, merged_outputs, not_applicable

TOL = 0.02


def _outputs(tokens: list[int], gaps: list[float], first: list[float]) -> dict[str, torch.Tensor]:
    """Outputs whose step i chose tokens[i] over rivals tokens[i] + 1 and + 2, by gaps[i]
    and by twice gaps[i]."""
    top1 = torch.full((len(tokens),), 10.0)
    gap = torch.tensor(gaps)
    chosen = torch.tensor(tokens)
    return {
        "tokens": chosen,
        "first_logits": torch.tensor(first),
        "top_values": torch.stack([top1, top1 - gap, top1 - 2 * gap], dim=1),
        "top_indices": torch.stack([chosen, chosen + 1, chosen + 2], dim=1),
    }


FIRST = [10.0, 9.95, 1.0, -3.0]
BASE = _outputs([0, 5, 7, 2], [0.05, 0.1, 0.1, 0.3], FIRST)


def test_identical_outputs_pass():
    verdict = judge_variant("same", {"p1": BASE, "p2": BASE}, {"p1": BASE, "p2": BASE}, TOL)
    assert verdict["status"] == "passed"
    assert verdict["pages_identical"] == 2
    assert "identical on all 2 pages" in verdict["criterion"]


def test_divergence_to_a_close_rival_passes_as_a_near_tie():
    # Step 1: baseline chose 5 over 7 by 0.2 (2% of the largest logit, 10): a near-tie.
    other = _outputs([0, 7, 3, 3], [0.05, 0.1, 0.1, 0.3], [10.0, 9.96, 1.0, -3.0])
    page = judge_page(BASE, other, TOL)
    assert page["ok"] and page["diverged_at"] == 1
    assert page["tie_gap"] == pytest.approx(0.02, rel=1e-5)
    verdict = judge_variant("tie", {"p": BASE}, {"p": other}, TOL)
    assert verdict["status"] == "passed"
    assert "near-tie" in verdict["criterion"]


def test_divergence_at_a_clear_choice_fails():
    other = _outputs([0, 5, 7, 3], [0.05, 0.1, 0.1, 0.3], FIRST)  # step 3: gap 3% > 2%
    verdict = judge_variant("wrong", {"p": BASE}, {"p": other}, TOL)
    assert verdict["status"] == "failed"
    assert "diverge at step 3 to a token 0.03 below" in verdict["detail"]


def test_divergence_to_a_token_outside_the_top_candidates_fails():
    other = _outputs([0, 5, 99, 3], [0.05, 0.1, 0.1, 0.3], FIRST)
    verdict = judge_variant("wrong", {"p": BASE}, {"p": other}, TOL)
    assert verdict["status"] == "failed"
    assert "outside the baseline's top candidates" in verdict["detail"]


def test_first_logits_beyond_tolerance_fail_even_with_equal_tokens():
    other = _outputs([0, 5, 7, 2], [0.05, 0.1, 0.1, 0.3], [10.0, 9.5, 1.0, -3.0])
    verdict = judge_variant("drift", {"p": BASE}, {"p": other}, TOL)
    assert verdict["status"] == "failed"
    assert verdict["relative_logit_diff"] == pytest.approx(0.045, rel=1e-5)
    assert "differ by 0.045" in verdict["detail"]


def test_missing_pages_fail_and_are_named():
    verdict = judge_variant("partial", {"p1": BASE, "p2": BASE}, {"p1": BASE}, TOL)
    assert verdict["status"] == "failed"
    assert "p2" in verdict["detail"]


def test_sweep_points_are_not_gated():
    verdict = not_applicable("base-mode", "mode base: a different workload from the baseline")
    assert verdict["status"] == "not_applicable"
    assert verdict["relative_logit_diff"] is None


def test_every_shards_outputs_merge_into_one_mapping_on_the_cpu(tmp_path: Path):
    shards = [{"p1": BASE}, {"p2": _outputs([1, 2, 3, 4], [0.1] * 4, FIRST), "p3": BASE}]
    paths = []
    for index, outputs in enumerate(shards):
        paths.append(tmp_path / f"shard-{index}.outputs.pt")
        torch.save(outputs, paths[-1])
    merged = merged_outputs(paths)
    assert sorted(merged) == ["p1", "p2", "p3"]
    assert torch.equal(merged["p2"]["tokens"], torch.tensor([1, 2, 3, 4]))
    assert all(t.device.type == "cpu" for page in merged.values() for t in page.values())
    assert judge_variant("v", merged, merged_outputs(reversed(paths)), TOL)["status"] == "passed"

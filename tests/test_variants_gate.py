"""Correctness gate on known numbers: a variant's error against the oracle, step by step,
within a factor of the baseline's own passes; beyond it, or a page missing, fails."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from vlmprof.data.subset import first_pages
from vlmprof.variants.gate import (
    GateFactors,
    GateInputError,
    judge_page,
    judge_variant,
    merged_outputs,
    not_applicable,
)

FACTORS = GateFactors(code_path=10.0, precision=1.5)
STEPS = 4
# The oracle's probe logits: step t's largest is 10, so an error of 0.01 is 0.001 of it.
ORACLE_PROBES = torch.tensor([[10.0, 9.0, 1.0, -3.0]] * STEPS, dtype=torch.float64)


def _outputs(tokens: list[int], error: list[float], picks: list[int] | None = None) -> dict:
    """Saved outputs whose probe logits differ from the oracle's by `error[t]` at step t
    (on the first entry), with greedy picks `picks` (default: `tokens`)."""
    probes = ORACLE_PROBES.clone()
    probes[:, 0] += torch.tensor(error, dtype=torch.float64)
    chosen = torch.tensor(picks if picks is not None else tokens)
    return {
        "tokens": chosen,
        "top_indices": torch.stack([chosen, chosen + 1, chosen + 2], dim=1),
        "top_values": probes[:, :3],
        "probe_values": probes,
    }


ORACLE = _outputs([0, 5, 7, 2], [0.0] * STEPS)
BASE = _outputs([0, 5, 7, 2], [1e-6, 2e-6, 1e-6, 4e-6])


def test_the_baseline_against_itself_passes_at_ratio_one():
    page = judge_page(BASE, BASE, ORACLE, FACTORS)
    assert page["ok"] and page["code_path_ratio"] == pytest.approx(1.0)
    assert page["same_picks"] and page["first_different_pick"] is None
    verdict = judge_variant("same", {"p": BASE}, {"p": BASE}, {"p": ORACLE}, FACTORS)
    assert verdict["status"] == "passed"
    assert "1x the baseline's at the check precision (limit 10x)" in verdict["detail"]
    assert "every one of its 4 steps" in verdict["criterion"]


def test_an_error_within_the_factor_passes_and_beyond_it_fails():
    within = _outputs([0, 5, 7, 2], [3e-6, 2e-6, 30e-6, 1e-6])  # largest 30e-6: 7.5x 4e-6
    beyond = _outputs([0, 5, 7, 2], [1e-6, 2e-6, 1e-6, 1e-3])  # one step at 250x
    assert judge_page(BASE, within, ORACLE, FACTORS)["code_path_ratio"] == pytest.approx(7.5)
    verdict = judge_variant("wrong", {"p": BASE}, {"p": beyond}, {"p": ORACLE}, FACTORS)
    assert verdict["status"] == "failed"
    assert verdict["code_path_ratio"] == pytest.approx(250.0)
    assert "p: largest logit error 0.0001 of the logit range, 250x" in verdict["detail"]


def test_greedy_picks_that_part_are_information_not_the_verdict():
    parted = _outputs([0, 5, 7, 2], [1e-6] * STEPS, picks=[0, 5, 8, 3])
    page = judge_page(BASE, parted, ORACLE, FACTORS)
    assert page["ok"]
    assert (page["same_picks"], page["first_different_pick"]) == (False, 2)
    assert page["top1_agreement"] == pytest.approx(0.5)


def test_a_narrower_run_is_judged_at_float32_and_at_its_own_precision():
    # The run (bfloat16): errors of 1e-2 for both arms; the checks (float32): 1e-6.
    noisy = _outputs([0, 5, 7, 2], [0.1] * STEPS)
    twice = _outputs([0, 5, 7, 2], [0.2] * STEPS)
    checks = (BASE, BASE)
    same = judge_page(noisy, noisy, ORACLE, FACTORS, checks)
    assert same["ok"] and same["precision_ratio"] == pytest.approx(1.0)
    worse = judge_page(noisy, twice, ORACLE, FACTORS, checks)
    assert not worse["ok"] and worse["precision_ratio"] == pytest.approx(2.0)
    assert worse["code_path_ratio"] == pytest.approx(1.0)  # the code path itself is right
    verdict = judge_variant(
        "v", {"p": noisy}, {"p": twice}, {"p": ORACLE}, FACTORS, ({"p": BASE}, {"p": BASE})
    )
    assert "RMS logit error at the run's precision 2x the baseline's" in verdict["detail"]


def test_missing_pages_and_short_runs_fail_and_are_named():
    short = {key: value[:2] for key, value in BASE.items()}
    verdict = judge_variant(
        "partial",
        {"p1": BASE, "p2": BASE, "p3": BASE},
        {"p1": BASE, "p3": short},
        {"p1": ORACLE, "p2": ORACLE, "p3": ORACLE},
        FACTORS,
    )
    assert verdict["status"] == "failed"
    assert "1 page(s) without output (p2)" in verdict["detail"]
    assert "p3: 2 of 4 steps ran" in verdict["detail"]


def test_sweep_points_are_not_gated():
    verdict = not_applicable("base-mode", "mode base: a different workload from the baseline")
    assert verdict["status"] == "not_applicable"
    assert verdict["code_path_ratio"] is None


def test_every_shards_outputs_merge_into_one_mapping_on_the_cpu(tmp_path: Path):
    shards = [{"p1": BASE}, {"p2": _outputs([1, 2, 3, 4], [0.0] * STEPS), "p3": BASE}]
    paths = []
    for index, outputs in enumerate(shards):
        paths.append(tmp_path / f"shard-{index}.outputs.pt")
        torch.save(outputs, paths[-1])
    merged = merged_outputs(paths)
    assert sorted(merged) == ["p1", "p2", "p3"]
    assert torch.equal(merged["p2"]["tokens"], torch.tensor([1, 2, 3, 4]))
    assert all(t.device.type == "cpu" for page in merged.values() for t in page.values())


def test_outputs_of_an_older_version_are_refused_with_what_to_do(tmp_path: Path):
    path = tmp_path / "shard-0.outputs.pt"
    torch.save({"p1": {"tokens": torch.tensor([1]), "first_logits": torch.zeros(4)}}, path)
    with pytest.raises(GateInputError, match="page p1 has no top_indices, probe_values; .* rerun"):
        merged_outputs([path])


def test_pages_that_did_not_fit_are_no_failure_but_a_wrong_page_still_fails():
    baseline = {"p": BASE, "q": BASE, "r": BASE}
    oracle = {"p": ORACLE, "q": ORACLE, "r": ORACLE}
    # "q" and "r" ran out of memory: no outputs, and the records say why.
    verdict = judge_variant("b256", baseline, {"p": BASE}, oracle, FACTORS, did_not_fit={"q", "r"})
    assert verdict["status"] == "did_not_fit", verdict
    assert verdict["pages_did_not_fit"] == ["q", "r"]
    assert verdict["detail"].startswith("2 of 3 pages did not fit (out of memory); the 1 that ran")
    assert "same greedy picks" not in verdict["detail"] and "on 1 of 1 pages" in verdict["detail"]
    none_ran = judge_variant("b512", baseline, {}, oracle, FACTORS, did_not_fit=set(baseline))
    assert none_ran["status"] == "did_not_fit" and none_ran["detail"] == (
        "3 of 3 pages did not fit (out of memory)"
    )
    # A page missing for another reason, or one that ran wrong, fails the gate as before.
    lost = judge_variant("lost", baseline, {"p": BASE}, oracle, FACTORS, did_not_fit={"q"})
    assert lost["status"] == "failed" and "1 page(s) without output (r)" in lost["detail"]
    wrong = _outputs([0, 5, 7, 2], [1e-6, 2e-6, 1e-6, 1e-3])
    bad = judge_variant("bad", baseline, {"p": wrong}, oracle, FACTORS, did_not_fit={"q", "r"})
    assert bad["status"] == "failed"


def test_a_sampled_gate_judges_its_sample_and_says_so():
    wrong = _outputs([0, 5, 7, 2], [1e-6, 2e-6, 1e-6, 1e-3])
    baseline = {"p": BASE, "q": BASE, "r": BASE}
    # The oracle ran the sample only; a page outside it is neither judged nor missing.
    oracle = {"p": ORACLE, "q": ORACLE}
    variant = {"p": BASE, "q": BASE, "r": wrong}
    verdict = judge_variant("b8", baseline, variant, oracle, FACTORS, sample={"p", "q"})
    assert verdict["status"] == "passed", verdict
    assert (verdict["pages"], verdict["pages_in_run"]) == (2, 3)
    assert sorted(verdict["page_results"]) == ["p", "q"]
    assert "each of the run's first 2 of 3 pages (the gate's sample)" in verdict["criterion"]
    # A wrong page inside the sample fails it.
    variant["q"] = wrong
    failed = judge_variant("b8", baseline, variant, oracle, FACTORS, sample={"p", "q"})
    assert failed["status"] == "failed" and "q: largest logit error" in failed["detail"]
    # Without a sample every page is judged: the oracle's missing page fails the gate.
    whole = judge_variant("b8", baseline, {"p": BASE, "q": BASE, "r": BASE}, oracle, FACTORS)
    assert whole["status"] == "failed" and "1 page(s) without output (r)" in whole["detail"]


def test_first_pages_are_the_subsets_first_in_selection_order():
    subset = pd.DataFrame({"image_id": ["b", "a", "c"], "path": ["b.png", "a.png", "c.png"]})
    assert first_pages(subset, 2) == {"b", "a"}
    assert first_pages(subset, None) == {"a", "b", "c"}
    assert first_pages(subset, 10) == {"a", "b", "c"}

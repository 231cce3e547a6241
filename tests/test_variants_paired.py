"""The comparison engine on its own: Student's t, Holm on known p-values, the minimum of
pages, the drift variance from the A/A control, and the interval's coverage simulated under
page noise and run-level drift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlmprof.variants import paired
from vlmprof.variants.paired import (
    FASTER,
    MIN_PAGES,
    NOT_JUDGED,
    SLOWER,
    TOO_FEW_PAGES,
    WITHIN_NOISE,
    Drift,
    PairedRatio,
    holm,
    holm_by_family,
    page_variance,
    paired_ratio,
    reference_times,
    shard_drift,
    t_quantile,
    t_two_sided_p,
)


@pytest.mark.parametrize(
    ("df", "quantile"),
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (7, 2.365), (30, 2.042), (1000, 1.962)],
)
def test_t_quantiles_match_the_table(df, quantile):
    assert t_quantile(0.95, df) == pytest.approx(quantile, abs=5e-4)
    assert t_two_sided_p(quantile, df) == pytest.approx(0.05, abs=1e-4)


def test_t_p_values_match_the_table():
    assert t_two_sided_p(2.0, 10) == pytest.approx(0.07339, abs=1e-5)
    assert t_two_sided_p(1.0, 1) == pytest.approx(0.5)  # Cauchy: P(|T| > 1) = 1/2
    assert t_two_sided_p(0.0, 5) == 1.0
    assert t_two_sided_p(-3.0, 6) == t_two_sided_p(3.0, 6)
    assert t_two_sided_p(math.inf, 3) == 0.0


def test_holm_on_known_p_values():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, each at least the one before it.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []
    # Two families are corrected apart; an untested entry stays untested.
    adjusted = holm_by_family(["page", "stages", "page", "stages"], [0.02, 0.02, 0.03, None])
    assert adjusted == pytest.approx([0.04, 0.02, 0.04, None])


def test_verdicts_follow_the_adjusted_p():
    faster = PairedRatio(pages=10, ratio=1.2, p=0.001)
    slower = PairedRatio(pages=10, ratio=0.8, p=0.001)
    assert paired.verdict(faster, 0.04) == FASTER
    assert paired.verdict(slower, 0.04) == SLOWER
    assert paired.verdict(faster, 0.06) == WITHIN_NOISE
    assert paired.verdict(PairedRatio(pages=5, ratio=2.0, reading=TOO_FEW_PAGES), 0.0) == (
        TOO_FEW_PAGES
    )


def test_below_the_minimum_of_pages_there_is_a_ratio_and_no_interval():
    rng = np.random.default_rng(0)
    reference = rng.uniform(10, 20, MIN_PAGES)
    arm = reference / 2 * rng.normal(1, 0.01, MIN_PAGES)
    drift = Drift(mean_square=1e-4, shards=1)
    few = paired_ratio(reference[:-1], arm[:-1], drift=drift)
    assert few.reading == TOO_FEW_PAGES and few.pages == MIN_PAGES - 1
    assert few.ratio == pytest.approx(reference[:-1].sum() / arm[:-1].sum())
    assert (few.low, few.high, few.p, few.noise_floor) == (None, None, None, None)
    enough = paired_ratio(reference, arm, drift=drift)
    assert enough.reading is None and enough.low < enough.ratio < enough.high
    # Pages without a positive time in both are left out before counting.
    arm[0] = np.nan
    assert paired_ratio(reference, arm, drift=drift).reading == TOO_FEW_PAGES


def test_without_drift_the_interval_is_pages_only_and_judges_nothing():
    rng = np.random.default_rng(1)
    reference = rng.uniform(10, 20, 12)
    arm = reference / 1.5
    pages_only = paired_ratio(reference, arm * rng.normal(1, 0.01, 12))
    assert pages_only.reading == NOT_JUDGED and pages_only.p is None
    assert pages_only.low < 1.5 < pages_only.high and pages_only.drift_shards == 0
    assert paired.verdict(pages_only, None) == NOT_JUDGED


def test_the_drift_term_is_three_quarters_of_the_controls_mean_square():
    # No page noise: the variance is the drift term alone, shard shares of the arm's time.
    reference = np.array([10.0, 10.0, 10.0, 10.0, 30.0, 30.0, 30.0, 30.0])
    shard = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    arm = reference / 2
    baseline, control = reference * 1.02, reference * np.where(shard == 0, 0.98, 1.0)
    drift = shard_drift(baseline, control, shard)
    logs = [math.log(1.02 / 0.98), math.log(1.02)]
    assert drift == Drift(pytest.approx(np.mean(np.square(logs))), 2)
    result = paired_ratio(reference, arm, shard, drift)
    shares = np.array([40.0, 120.0]) / 160.0
    expected = 0.75 * drift.mean_square * float(np.square(shares).sum())
    assert result.log_se == pytest.approx(math.sqrt(expected))
    assert result.df == 2 and result.drift_shards == 2
    spread = t_quantile(0.95, 2) * result.log_se
    assert result.noise_floor == pytest.approx(math.expm1(spread))
    assert result.low == pytest.approx(2.0 * math.exp(-spread))
    assert result.p == pytest.approx(t_two_sided_p(math.log(2.0) / result.log_se, 2))
    # The reference averages the drift of baseline and control, page by page.
    assert reference_times(baseline, control)[0] == pytest.approx(10.0)


def test_pages_that_weigh_alike_give_pages_less_one_degrees_of_freedom():
    rng = np.random.default_rng(2)
    even = rng.uniform(10, 10.5, 12)
    assert page_variance(even, even * rng.normal(1, 0.01, 12))[1] == 11
    # One page holding most of the time leaves few effective pages.
    heavy = np.array([1000.0, *rng.uniform(1, 2, 11)])
    assert page_variance(heavy, heavy * rng.normal(1, 0.01, 12))[1] == 1


def _simulated_pages(rng, pages, shards, drift_sd, noise_sd, effect=0.0):
    """Baseline, control and arm times of pages of different sizes: each arm's shard k
    drifts by its own factor, each page by its own noise; the arm `effect` (log) faster."""
    size = rng.normal(3.0, 0.5, pages)
    shard = np.arange(pages) % shards

    def arm(log_effect: float) -> np.ndarray:
        drift = rng.normal(0.0, drift_sd, shards)[shard]
        return np.exp(size - log_effect + drift + rng.normal(0.0, noise_sd, pages))

    return arm(0.0), arm(0.0), arm(effect), shard


@pytest.mark.parametrize("shards", [1, 4])
def test_the_interval_with_drift_covers_the_true_ratio(shards):
    rng = np.random.default_rng(shards)
    trials, covered = 2000, 0
    for _ in range(trials):
        baseline, control, arm, shard = _simulated_pages(rng, 16, shards, 0.03, 0.01, 0.1)
        drift = shard_drift(baseline, control, shard)
        result = paired_ratio(reference_times(baseline, control), arm, shard, drift)
        covered += result.low <= math.exp(0.1) <= result.high
    assert covered / trials >= 0.95


def test_the_pages_only_interval_covers_at_eight_pages():
    # A percentile bootstrap over 6 to 8 pages covers 86-88%; the delta method with the
    # effective pages' degrees of freedom holds 95%.
    rng = np.random.default_rng(3)
    trials, covered = 4000, 0
    for _ in range(trials):
        baseline, _, arm, _ = _simulated_pages(rng, MIN_PAGES, 1, 0.0, 0.05, 0.1)
        result = paired_ratio(baseline, arm)
        covered += result.low <= math.exp(0.1) <= result.high
    assert covered / trials >= 0.945

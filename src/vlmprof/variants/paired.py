"""The one comparison engine: an arm's time against a reference on the pages both measured,
its 95% interval with the drift between runs in it, and verdicts corrected for how many
are made. The variants comparison, the two-run comparison and the benchmarks use it.

Model: log t(arm, page) = page effect + arm effect + drift(arm, process) + noise, where a
process is one job (one shard of one arm, minutes from the others). The estimate is
E = log(sum of reference times / sum of arm times) over the pages both measured (a ratio
of totals: above 0, the arm is faster). Its variance V has two parts:

- page noise, by the delta method over pages (the paired pages' influence on E), with the
  effective number of pages less one as its degrees of freedom (pages - 1 when they weigh
  alike: at 8 pages of different lengths plain pages - 1 covered 87-93%, this 95-99%);
- drift, measured by the A/A control: per shard k, D_k = log(baseline total / control
  total) over the shard's pages is drift alone (variance 2 sigma^2, plus page noise). The
  reference is the page-wise mean of baseline and control, so its drift has variance
  sigma^2 / 2 and the arm's sigma^2: 1.5 sigma^2 per process, weighted by each shard's
  share w_k of the arm's time, a = 0.75 * mean_k(D_k^2) * sum_k w_k^2 (conservative: D_k
  holds page noise too).

t = E / sqrt(V) with S degrees of freedom, S the shards whose drift was measured (with no
page noise and even shards E / sqrt(a) is exactly Student's t with S degrees of freedom):
one shard measures drift once, so only large effects clear it. Simulated at 3% drift per
process and 1% page noise, a null arm is called faster or slower in 1-2% of stages at S = 1
and S = 4; a Welch-Satterthwaite df was anti-conservative at S = 1, since D near 0 lifts it.
Verdicts are Holm-corrected at 5% within a family of tests. Without a control drift is not
measured: the interval covers page noise only and nothing is judged. Below `MIN_PAGES`
pages no interval is given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Fewer pages than this measured by both arms: no interval (two page ratios make none).
MIN_PAGES = 8
LEVEL = 0.95
ALPHA = 0.05
# Drift variance of E per unit of E[D^2]: (1/2 + 1) sigma^2 over 2 sigma^2.
DRIFT_SHARE = 0.75
FASTER, SLOWER, WITHIN_NOISE = "faster", "slower", "within noise"
TOO_FEW_PAGES = "too few pages"
NOT_JUDGED = "not judged: drift not measured"
JUDGED: tuple[str, ...] = (FASTER, SLOWER, WITHIN_NOISE)
METHOD = {
    "ratio": "reference time / arm time, each summed over the pages both measured of that "
    "page's mean over its ok repeats (above 1: the arm is faster); the reference is the "
    "baseline, averaged page by page with its A/A control when the run has one",
    "interval": f"{LEVEL:.0%} interval exp(E +/- t * sqrt(V)), E the log ratio: V adds the "
    "page noise (delta method over the pages) and the drift between runs the A/A control "
    "measured per shard (0.75 x the mean square of log(baseline / control) per shard x the "
    "sum of squared shard shares of the arm's time); t has as many degrees of freedom as "
    "shards measured the drift (without a control: the effective pages less one, page "
    f"noise only); none with fewer than {MIN_PAGES} pages",
    "noise floor": f"the smallest change the run could have called at {ALPHA:.0%} before the "
    "multiplicity correction, exp(t * sqrt(V)) - 1: one shard measures drift once (1 "
    "degree of freedom), so only large changes clear it; `shards: 4` (each shard its own "
    "job) measures it four times and resolves a few percent",
}


@dataclass(frozen=True)
class Drift:
    """The drift between runs one stage shows: the mean square of log(baseline / control)
    per shard, over `shards` shards."""

    mean_square: float
    shards: int


@dataclass(frozen=True)
class PairedRatio:
    """An arm against the reference on `pages` paired pages: the ratio of totals
    (reference / arm), its interval, standard error of its log and degrees of freedom, the
    two-sided p (None when not judged), the noise floor (smallest callable change, a
    fraction) and `reading` (TOO_FEW_PAGES, NOT_JUDGED, or None when the p decides)."""

    pages: int
    ratio: float | None
    low: float | None = None
    high: float | None = None
    log_se: float | None = None
    df: int | None = None
    p: float | None = None
    noise_floor: float | None = None
    drift_shards: int = 0
    reading: str | None = None


def _timed(times: np.ndarray) -> np.ndarray:
    """Which pages have a time: finite and above 0."""
    return np.isfinite(times) & (times > 0)


def _shard_ids(shard: np.ndarray | None, pages: int) -> np.ndarray:
    """Each page's shard; one shard for all when the pages do not say."""
    if shard is None:
        return np.zeros(pages, dtype=int)
    return np.asarray(shard)


def reference_times(baseline: np.ndarray, control: np.ndarray | None) -> np.ndarray:
    """The reference a variant is measured against: each page's mean of baseline and
    control (their drifts average), or the baseline without a control."""
    baseline = np.asarray(baseline, dtype=float)
    return baseline if control is None else (baseline + np.asarray(control, dtype=float)) / 2


def shard_drift(
    baseline: np.ndarray, control: np.ndarray, shard: np.ndarray | None = None
) -> Drift | None:
    """The drift the A/A control measured: log(baseline total / control total) per shard
    (shards split the pages alike for every arm), as its mean square; None without a page."""
    baseline, control = np.asarray(baseline, dtype=float), np.asarray(control, dtype=float)
    shard = _shard_ids(shard, len(baseline))
    kept = _timed(baseline) & _timed(control)
    logs = [
        math.log(baseline[kept & (shard == k)].sum() / control[kept & (shard == k)].sum())
        for k in np.unique(shard[kept])
    ]
    if not logs:
        return None
    return Drift(float(np.mean(np.square(logs))), len(logs))


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) of Student's t with integer `df` (Abramowitz and Stegun 26.7.3-4)."""
    if not math.isfinite(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    term, total = 1.0, 1.0
    if df % 2:
        for j in range(3, df, 2):
            term *= cos2 * (j - 1) / j
            total += term
        within = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total * (df > 1))
    else:
        for j in range(2, df, 2):
            term *= cos2 * (j - 1) / j
            total += term
        within = math.sin(theta) * total
    return min(max(1.0 - within, 0.0), 1.0)


@functools.cache
def t_quantile(level: float, df: int) -> float:
    """The t with P(|T| <= t) = `level` for Student's t with integer `df` (bisection)."""
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > 1 - level:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if t_two_sided_p(middle, df) > 1 - level else (low, middle)
    return (low + high) / 2


def page_variance(reference: np.ndarray, arm: np.ndarray) -> tuple[float, int]:
    """The page noise's variance of log(sum reference / sum arm) by the delta method, and
    its degrees of freedom: the effective number of pages less one (pages - 1 when they
    weigh alike; fewer when a few long pages carry the totals)."""
    pages = len(arm)
    # Each page's influence on the log ratio: its share of the reference minus of the arm.
    influence = reference / reference.sum() - arm / arm.sum()
    variance = float(np.square(influence).sum()) * pages / (pages - 1)
    # Satterthwaite's count of the pages the variance rests on: sum(w^2)^2 / sum(w^4).
    squared_share = np.square((reference / reference.sum() + arm / arm.sum()) / 2)
    effective = float(squared_share.sum() ** 2 / np.square(squared_share).sum())
    return variance, max(1, round(effective) - 1)


def paired_ratio(
    reference: np.ndarray,
    arm: np.ndarray,
    shard: np.ndarray | None = None,
    drift: Drift | None = None,
) -> PairedRatio:
    """The arm against the reference on the same pages (aligned arrays; pages without a
    positive time in both are left out): ratio of totals, interval, p and noise floor.
    With `drift` (the A/A control's) the interval holds it and the p judges; without it the
    interval is page noise only and the reading says drift was not measured."""
    reference, arm = np.asarray(reference, dtype=float), np.asarray(arm, dtype=float)
    kept = _timed(reference) & _timed(arm)
    shard = np.unique(_shard_ids(shard, len(arm))[kept], return_inverse=True)[1]
    reference, arm = reference[kept], arm[kept]
    pages = len(arm)
    if not pages:
        return PairedRatio(pages, None)
    ratio = float(reference.sum() / arm.sum())
    if pages < MIN_PAGES:
        return PairedRatio(pages, ratio, reading=TOO_FEW_PAGES)
    log_ratio = math.log(ratio)
    variance, df = page_variance(reference, arm)
    if drift is not None:
        shares = np.bincount(shard, weights=arm) / arm.sum()
        variance += DRIFT_SHARE * drift.mean_square * float(np.square(shares).sum())
        df = drift.shards
    log_se = math.sqrt(variance)
    spread = t_quantile(LEVEL, df) * log_se
    p = None
    if drift is not None:
        p = t_two_sided_p(log_ratio / log_se, df) if log_se > 0 else float(log_ratio == 0)
    return PairedRatio(
        pages=pages,
        ratio=ratio,
        low=math.exp(log_ratio - spread),
        high=math.exp(log_ratio + spread),
        log_se=log_se,
        df=df,
        p=p,
        noise_floor=math.expm1(spread),
        drift_shards=0 if drift is None else drift.shards,
        reading=None if drift is not None else NOT_JUDGED,
    )


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: a test is significant at
    level alpha when its adjusted p is at most alpha, holding the family-wise error."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted = [1.0] * len(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def holm_by_family(families: Sequence[str], p: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p of each test within its family (None stays None: not a test)."""
    adjusted: list[float | None] = [None] * len(p)
    for family in set(families):
        members = [i for i, f in enumerate(families) if f == family and p[i] is not None]
        for index, value in zip(members, holm([p[i] for i in members]), strict=True):
            adjusted[index] = value
    return adjusted


def verdict(paired: PairedRatio, p_adjusted: float | None) -> str:
    """faster, slower or within noise by the adjusted p at ALPHA; the reading where the
    pair was not judged."""
    if paired.reading is not None:
        return paired.reading
    if p_adjusted is None or p_adjusted > ALPHA or paired.ratio == 1.0:
        return WITHIN_NOISE
    return FASTER if paired.ratio > 1.0 else SLOWER

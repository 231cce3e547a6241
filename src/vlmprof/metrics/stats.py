"""Summary statistics of one set of measurements (mean, spread, percentiles).

One function so every table and JSON field in the pipeline computes them the same way:
sample standard deviation (ddof=1), linear-interpolated percentiles, NaN and None ignored.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

STAT_KEYS: tuple[str, ...] = ("mean", "std", "cv", "p50", "p90", "p99", "min", "max")


def finite_values(values: Iterable[float | int | None]) -> np.ndarray:
    """The finite numbers of `values` as a float array (None, NaN and inf dropped)."""
    array = np.asarray([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def summarize(values: Iterable[float | int | None]) -> dict[str, float | int | None]:
    """Mean, std (ddof=1; 0 for one value), cv, p50/p90/p99, min, max and n of `values`.

    An empty input (after dropping None/NaN) gives n=0 and None for every statistic; cv is
    None when the mean is 0.
    """
    array = finite_values(values)
    n = int(array.size)
    if n == 0:
        return {key: None for key in STAT_KEYS} | {"n": 0}
    mean = float(array.mean())
    std = float(array.std(ddof=1)) if n > 1 else 0.0
    p50, p90, p99 = (float(p) for p in np.percentile(array, [50, 90, 99]))
    return {
        "mean": mean,
        "std": std,
        "cv": std / mean if mean != 0 else None,
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "min": float(array.min()),
        "max": float(array.max()),
        "n": n,
    }

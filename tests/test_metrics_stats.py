"""Summary statistics: known values, edge cases and order properties."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlmprof.metrics.stats import summarize


def test_known_values():
    stats = summarize([1.0, 2.0, 3.0, 4.0])
    assert stats["n"] == 4
    assert stats["mean"] == pytest.approx(2.5)
    assert stats["std"] == pytest.approx(math.sqrt(5 / 3))  # sample std, ddof=1
    assert stats["cv"] == pytest.approx(math.sqrt(5 / 3) / 2.5)
    assert stats["p50"] == pytest.approx(2.5)
    assert stats["p90"] == pytest.approx(3.7)
    assert stats["p99"] == pytest.approx(3.97)
    assert (stats["min"], stats["max"]) == (1.0, 4.0)


def test_single_value_has_zero_std():
    stats = summarize([7.0])
    assert stats["n"] == 1
    assert stats["std"] == 0.0
    assert stats["cv"] == 0.0
    assert stats["p99"] == 7.0


def test_nan_and_none_are_ignored():
    assert summarize([1.0, float("nan"), None, 3.0]) == summarize([1.0, 3.0])


@pytest.mark.parametrize("values", [[], [None], [float("nan")]])
def test_empty_gives_none(values):
    stats = summarize(values)
    assert stats["n"] == 0
    assert all(stats[key] is None for key in stats if key != "n")


def test_zero_mean_has_no_cv():
    assert summarize([0.0, 0.0])["cv"] is None


@given(st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=1, max_size=50))
def test_order_of_statistics(values):
    stats = summarize(values)
    tol = 1e-9 * max(1.0, stats["max"])
    assert stats["min"] - tol <= stats["p50"] <= stats["p90"] + tol
    assert stats["p90"] <= stats["p99"] + tol <= stats["max"] + 2 * tol
    assert stats["min"] - tol <= stats["mean"] <= stats["max"] + tol
    assert stats["std"] >= 0.0

"""The benchmarks' arm orders: every arm in every position and after every other equally."""

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_args import balanced_orders  # noqa: E402


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
def test_orders_balance_position_and_predecessor(n: int) -> None:
    names = [f"arm{i}" for i in range(n)]
    orders = balanced_orders(names)
    assert all(sorted(order) == names for order in orders)
    for position in range(n):
        counts = Counter(order[position] for order in orders)
        assert set(counts) == set(names) and len(set(counts.values())) == 1
    pairs = Counter((a, b) for order in orders for a, b in zip(order, order[1:], strict=False))
    assert len(pairs) == n * (n - 1)
    assert len(set(pairs.values())) == 1

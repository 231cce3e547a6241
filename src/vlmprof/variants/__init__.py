"""Optimisation variants and sweep points: switches, the correctness gate, the comparison."""

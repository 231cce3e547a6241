"""A benchmark arm in a process of its own (variant_decode.py runs each so, so that no two
models' CUDA graphs share a process): its result or its error comes back."""

import functools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_args import in_own_process  # noqa: E402


def test_the_arm_runs_in_another_process_and_its_result_comes_back():
    assert in_own_process(os.getpid) != os.getpid()
    assert in_own_process(divmod, 7, 2) == (3, 1)


def test_the_arms_error_comes_back_as_itself():
    with pytest.raises(ValueError, match="invalid literal for int"):
        in_own_process(functools.partial(int, "seven"))

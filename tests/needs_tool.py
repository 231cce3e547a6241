"""Tests that need a tool beside Python (Chromium, Graphviz, SLURM, HolisticTraceAnalysis):
skipped, saying why, where it is missing; failed instead where every tool must be there (CI
sets VLMPROF_REQUIRE_TOOLS=1 once it has installed them, so none is skipped unseen)."""

from __future__ import annotations

import os

import pytest

REQUIRE_TOOLS = "VLMPROF_REQUIRE_TOOLS"


def missing_tool(reason: str | None) -> None:
    """Skip the running test with `reason` (why its tool is missing), or fail it where
    VLMPROF_REQUIRE_TOOLS=1; nothing when `reason` is None (the tool is there)."""
    if reason is None:
        return
    if os.environ.get(REQUIRE_TOOLS) == "1":
        pytest.fail(f"{reason} ({REQUIRE_TOOLS}=1: every tool must be installed)", pytrace=False)
    pytest.skip(reason)


def needs_tool(reason: str | None) -> pytest.MarkDecorator:
    """Mark a test whose tool is missing where `reason` is set: `missing_tool` runs on it
    before its fixtures are set up (tests/conftest.py)."""
    return pytest.mark.needs_tool(reason)

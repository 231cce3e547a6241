"""A test whose tool is missing skips with the reason, unless every tool is required (CI):
then it fails, so an install that did not happen cannot pass as a skip."""

import pytest

from tests.needs_tool import REQUIRE_TOOLS, missing_tool

REASON = "dot missing: apt-get install graphviz"


def test_a_missing_tool_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(REQUIRE_TOOLS, raising=False)
    with pytest.raises(pytest.skip.Exception, match=REASON):
        missing_tool(REASON)


def test_a_missing_tool_fails_where_every_tool_is_required(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(REQUIRE_TOOLS, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REASON} \\({REQUIRE_TOOLS}=1"):
        missing_tool(REASON)


def test_a_tool_that_is_there_neither_skips_nor_fails(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(REQUIRE_TOOLS, "1")
    missing_tool(None)

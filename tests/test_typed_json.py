"""Typed JSON: a dataclass read field by field from its type hints, written back whole, and
its schema written out; what it refuses is named by its key path."""

from __future__ import annotations

import dataclasses
from enum import StrEnum

import pytest

from vlmprof.typed_json import (
    DocumentError,
    described,
    read_as,
    schema_markdown,
    to_plain,
    undescribed,
)


class Colour(StrEnum):
    """A kind with names."""

    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Leaf:
    """A part."""

    count: int | None = described("how many")
    passed: bool | None = described("a key that is no Python name", key="pass")


@dataclasses.dataclass
class Root:
    """The whole."""

    name: str = described("always there", required=True)
    colour: Colour | None = described("a named kind")
    leaves: dict[str, Leaf] = described("parts by name", factory=dict)
    sizes: list[float] = described("numbers", factory=list)

    @staticmethod
    def upgrade(data: dict) -> dict:
        """Older documents called the leaves `parts`."""
        return {"leaves": data["parts"], **data} if "parts" in data else data


def test_a_document_reads_by_type_and_writes_back_whole():
    data = {"name": "x", "colour": "red", "leaves": {"a": {"count": 3e9, "pass": True}}}
    root = read_as(Root, data | {"sizes": [1, 2.5], "unknown": 1}, "doc")
    assert root.colour is Colour.RED and root.leaves["a"] == Leaf(count=3e9, passed=True)
    # Every field written, under its JSON key; numbers as they were written.
    assert to_plain(root) == data | {"sizes": [1, 2.5]}
    assert read_as(Root, {"name": "y"}, "doc") == Root("y")
    assert read_as(Root, {"name": "z", "parts": {"b": {}}}, "doc").leaves == {"b": Leaf()}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "doc: name: missing"),
        ({"name": 1}, "doc: name: expected a string, got 1"),
        ({"name": "x", "colour": "green"}, "doc: colour: expected 'red' or 'blue', got 'green'"),
        ({"name": "x", "leaves": {"a": {"count": 2.5}}}, "leaves.a.count: expected an integer"),
        ({"name": "x", "leaves": {"a": {"pass": 1}}}, "leaves.a.pass: expected true or false"),
        ({"name": "x", "sizes": [1, "2"]}, r"sizes\[1\]: expected a number, got '2'"),
        ({"name": "x", "leaves": []}, "leaves: expected an object, got \\[\\]"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named_by_its_key_path(data, message):
    with pytest.raises(DocumentError, match=message):
        read_as(Root, data, "doc")


def test_the_schema_lists_every_key_and_finds_one_without_a_description():
    page = schema_markdown(Root)
    assert "## Root" in page and "## Leaf" in page
    assert '| `colour` | `"red"` or `"blue"` or null | a named kind |' in page
    assert "| `leaves` | map of string to [`Leaf`](#leaf) | parts by name |" in page
    assert "| `pass` | boolean or null |" in page
    assert undescribed(Root) == []

    @dataclasses.dataclass
    class Bare:
        """Undescribed."""

        size: int = 0

    assert undescribed(Bare) == ["Bare.size"]

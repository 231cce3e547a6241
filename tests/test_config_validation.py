"""Config validation: any bad value fails naming its key and what is allowed; good ones pass.

Property tests mutate the default config one key at a time and validate it the way the
workflow does (`snakemake.utils.validate`, which also fills defaults); every key, bound and
allowed value is read from the schema itself, so new keys are covered as they are added.
A few dry runs show the same errors, and the missing-path checks, before any job is planned.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from tests.workflow_helpers import FAST_CONFIG, REPO, copy_workflow, snakemake, write_config

SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
DEFAULT_CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
PROPERTIES = settings(max_examples=150, deadline=None)

KeyPath = tuple[str, ...]


def _keys(schema: dict, path: KeyPath = ()) -> Iterator[tuple[KeyPath, dict]]:
    """Every key the schema describes, as (key path, its schema), parents first."""
    for name, sub in schema.get("properties", {}).items():
        yield (*path, name), sub
        yield from _keys(sub, (*path, name))


KEYS = list(_keys(SCHEMA))
LEAVES = [(path, sub) for path, sub in KEYS if "properties" not in sub]
CLOSED = [((), SCHEMA)] + [(p, s) for p, s in KEYS if s.get("additionalProperties") is False]
RANGED = [
    (path, sub)
    for path, sub in KEYS
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & sub.keys()
]
ENUMS = [(path, sub) for path, sub in KEYS if "enum" in sub]
PATTERNS = [(path, sub) for path, sub in KEYS if "pattern" in sub]

JSON_VALUES = {
    "string": st.text(max_size=8),
    "integer": st.integers(-(10**9), 10**9),
    # Integral floats count as integers in JSON Schema, so "number" draws fractional ones.
    "number": st.floats(-1e9, 1e9).filter(lambda x: not x.is_integer()),
    "boolean": st.booleans(),
    "null": st.none(),
    "array": st.lists(st.integers(), max_size=3),
    "object": st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
}
ANY_VALUE = st.one_of(*JSON_VALUES.values())


def _declared(sub: dict) -> list[str]:
    """The JSON types the schema declares for a key."""
    return [sub["type"]] if isinstance(sub["type"], str) else list(sub["type"])


def _types(sub: dict) -> set[str]:
    """The JSON types a key accepts (a number may be an integer)."""
    types = set(_declared(sub))
    return types | {"integer"} if "number" in types else types


def _int_bounds(sub: dict) -> tuple[int | None, int | None]:
    """The smallest and largest integer the key's (integer) bounds allow."""
    low = sub.get("minimum", sub["exclusiveMinimum"] + 1 if "exclusiveMinimum" in sub else None)
    high = sub.get("maximum", sub["exclusiveMaximum"] - 1 if "exclusiveMaximum" in sub else None)
    return low, high


def _instance(path: KeyPath) -> str:
    """How jsonschema names a key path in its messages."""
    return "instance" + "".join(f"[{name!r}]" for name in path)


def _node(config: dict, path: KeyPath) -> dict:
    """The object at `path` in `config`, created empty where missing."""
    for name in path:
        config = config.setdefault(name, {})
    return config


def _with_value(path: KeyPath, value: Any) -> dict:
    """The default config with the key at `path` set to `value`."""
    config = copy.deepcopy(DEFAULT_CONFIG)
    _node(config, path[:-1])[path[-1]] = value
    return config


def _validation_error(config: dict) -> str | None:
    """The error text validation gives `config` (filling its defaults), or None if valid."""
    try:
        validate(config, str(SCHEMA_PATH))
    except WorkflowError as error:
        return str(error)
    return None


def _failure(config: dict, path: KeyPath) -> str:
    """The error text, checked to name the offending key path."""
    text = _validation_error(config)
    assert text is not None, f"{_instance(path)} accepted an invalid value"
    assert f"On {_instance(path)}:" in text, text
    return text


def test_the_default_config_is_valid():
    assert _validation_error(copy.deepcopy(DEFAULT_CONFIG)) is None


@PROPERTIES
@given(data=st.data())
def test_wrong_type_fails_naming_key_and_allowed_types(data: st.DataObject):
    path, sub = data.draw(st.sampled_from(KEYS), label="key")
    wrong = sorted(set(JSON_VALUES) - _types(sub))
    value = data.draw(st.sampled_from(wrong).flatmap(JSON_VALUES.get), label="value")
    text = _failure(_with_value(path, value), path)
    assert "is not of type " + ", ".join(map(repr, _declared(sub))) in text


def _outside(sub: dict) -> st.SearchStrategy[tuple[Any, str]]:
    """Values beyond one of the key's bounds, with how the error states that bound."""
    integer = "number" not in _declared(sub)
    floats = {"allow_nan": False, "allow_infinity": False}
    options = []
    if "minimum" in sub:
        low = sub["minimum"]
        below = st.integers(max_value=low - 1) if integer else st.floats(max_value=low, **floats)
        options.append(below.filter(lambda x: x < low).map(lambda x: (x, f"minimum of {low}")))
    if "exclusiveMinimum" in sub:
        low = sub["exclusiveMinimum"]
        below = st.integers(max_value=low) if integer else st.floats(max_value=low, **floats)
        options.append(below.map(lambda x: (x, f"less than or equal to the minimum of {low}")))
    if "maximum" in sub:
        high = sub["maximum"]
        above = st.integers(min_value=high + 1) if integer else st.floats(min_value=high, **floats)
        options.append(above.filter(lambda x: x > high).map(lambda x: (x, f"maximum of {high}")))
    if "exclusiveMaximum" in sub:
        high = sub["exclusiveMaximum"]
        above = st.integers(min_value=high) if integer else st.floats(min_value=high, **floats)
        message = f"greater than or equal to the maximum of {high}"
        options.append(above.map(lambda x: (x, message)))
    return st.one_of(options)


@PROPERTIES
@given(data=st.data())
def test_out_of_range_number_fails_naming_key_and_bound(data: st.DataObject):
    path, sub = data.draw(st.sampled_from(RANGED), label="key")
    value, bound = data.draw(_outside(sub), label="value")
    text = _failure(_with_value(path, value), path)
    assert bound in text


@PROPERTIES
@given(data=st.data())
def test_unknown_enum_value_fails_naming_key_and_allowed_values(data: st.DataObject):
    path, sub = data.draw(st.sampled_from(ENUMS), label="key")
    value = data.draw(st.text(max_size=12).filter(lambda v: v not in sub["enum"]), label="value")
    text = _failure(_with_value(path, value), path)
    assert f"{value!r} is not one of {sub['enum']!r}" in text


@PROPERTIES
@given(data=st.data())
def test_string_outside_its_pattern_fails_naming_key_and_pattern(data: st.DataObject):
    path, sub = data.draw(st.sampled_from(PATTERNS), label="key")
    pattern = sub["pattern"]
    value = data.draw(
        st.one_of(
            st.text(max_size=12),
            # A valid value with a trailing newline: Python's `$` matches before one.
            st.from_regex(pattern, fullmatch=True).map(lambda v: v + "\n"),
        ).filter(lambda v: re.fullmatch(pattern, v) is None),
        label="value",
    )
    text = _failure(_with_value(path, value), path)
    assert f"does not match {pattern!r}" in text


def _unknown_name(known: dict) -> st.SearchStrategy[str]:
    """A key the object does not have: a random name or a near-miss of a known one."""
    names = list(known)
    near_misses = st.sampled_from(names).flatmap(
        lambda name: st.sampled_from([name + "s", name[:-1], name.replace("_", "-")])
    )
    random_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
    return st.one_of(near_misses, random_names).filter(lambda name: name not in known)


@PROPERTIES
@given(data=st.data())
def test_unknown_key_fails_naming_it_and_the_allowed_keys(data: st.DataObject):
    path, sub = data.draw(st.sampled_from(CLOSED), label="object")
    name = data.draw(_unknown_name(sub["properties"]), label="name")
    value = data.draw(ANY_VALUE, label="value")
    config = copy.deepcopy(DEFAULT_CONFIG)
    _node(config, path)[name] = value
    text = _failure(config, path)
    assert f"({name!r} was unexpected)" in text
    assert all(repr(allowed) in text for allowed in sub["properties"])


def _valid(sub: dict) -> st.SearchStrategy[Any]:
    """Values the schema allows for a key, drawn from its own enum, pattern and bounds."""
    if "enum" in sub:
        return st.sampled_from(sub["enum"])
    types = _types(sub)
    options = []
    if "string" in types:
        pattern = sub.get("pattern")
        options.append(st.from_regex(pattern, fullmatch=True) if pattern else st.text())
    low, high = _int_bounds(sub)
    if "integer" in types and (low is None or high is None or low <= high):
        options.append(st.integers(low, high))
    if "number" in types:
        options.append(
            st.floats(
                min_value=sub.get("minimum", sub.get("exclusiveMinimum")),
                max_value=sub.get("maximum", sub.get("exclusiveMaximum")),
                exclude_min="exclusiveMinimum" in sub,
                exclude_max="exclusiveMaximum" in sub,
                allow_nan=False,
                allow_infinity=False,
            )
        )
    if "boolean" in types:
        options.append(st.booleans())
    if "null" in types:
        options.append(st.none())
    if "object" in types:
        options.append(st.just({}))
    return st.one_of(options)


OMITTED = object()


@st.composite
def _valid_config(draw: st.DrawFn) -> tuple[dict, dict[KeyPath, Any]]:
    """A config setting a random subset of keys to valid values; also what it set."""
    config: dict = {}
    chosen: dict[KeyPath, Any] = {}
    for path, sub in LEAVES:
        value = draw(st.one_of(st.just(OMITTED), _valid(sub)), label=".".join(path))
        if value is OMITTED:
            continue
        _node(config, path[:-1])[path[-1]] = chosen[path] = value
    return config, chosen


@PROPERTIES
@given(_valid_config())
def test_valid_values_pass_and_defaults_fill_the_rest(drawn: tuple[dict, dict[KeyPath, Any]]):
    config, chosen = drawn
    assert _validation_error(config) is None
    for path, sub in LEAVES:
        node = _node(config, path[:-1])
        if path in chosen:
            assert node[path[-1]] == chosen[path]
        elif "default" in sub:
            assert node[path[-1]] == sub["default"], path
        else:
            assert path[-1] not in node


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("config-checks"))


def _dry_run_error(workdir: Path, overrides: dict) -> str:
    """Output of a dry run with `overrides`, checked to fail before any job is planned."""
    config = write_config(workdir, overrides)
    result = snakemake(workdir, "-n", "--configfile", str(config), timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Job stats" not in output
    return output


def test_missing_dataset_folder_is_named_before_any_job(scratch: Path):
    missing = "data/no-such-pages"
    output = _dry_run_error(
        scratch, {**FAST_CONFIG, "dataset": {"source": "folder", "path": missing}}
    )
    assert f"dataset.path: {missing} does not exist" in output


def test_missing_list_file_is_named_before_any_job(scratch: Path):
    missing = "lists/no-such-list.txt"
    output = _dry_run_error(scratch, {**FAST_CONFIG, "subset": {"n": 3, "list_file": missing}})
    assert f"subset.list_file: {missing} does not exist" in output


def test_misspelt_key_is_named_before_any_job(scratch: Path):
    output = _dry_run_error(scratch, {**FAST_CONFIG, "repeat": 3})
    assert "('repeat' was unexpected)" in output

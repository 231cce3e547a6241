"""Config validation: any bad value fails in one line naming its key, the value and what is
allowed, and the file it came from; good ones pass with the defaults filled in.

Property tests mutate the default config one key at a time and check it the way the workflow
does (`vlmprof.config_check.check_config`, which also fills defaults); every key, bound and
allowed value is read from the schema itself, so new keys are covered as they are added.
Dry runs of the real workflow show what a user sees: a few lines, before any job.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.workflow_helpers import FAST_CONFIG, REPO, copy_workflow, snakemake, write_config
from vlmprof.config_check import (
    BOUND_WORDS,
    NEWLINE_GUARD,
    TYPE_WORDS,
    ConfigError,
    ConfigSources,
    check_config,
    load_schema,
)

SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = load_schema(SCHEMA_PATH)
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
RANGED = [(path, sub) for path, sub in KEYS if BOUND_WORDS.keys() & sub.keys()]
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


def _allowed_words(sub: dict) -> str:
    """A key's allowed values as an error lists them: true and false spelt as in YAML."""
    return ", ".join(json.dumps(v) if isinstance(v, bool) else str(v) for v in sub["enum"])


def _dotted(path: KeyPath) -> str:
    return ".".join(path)


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


def _validation_error(config: dict, sources: ConfigSources | None = None) -> str | None:
    """The error text checking gives `config` (filling its defaults), or None if valid."""
    try:
        check_config(config, SCHEMA, sources)
    except ConfigError as error:
        return str(error)
    return None


def _failure(config: dict, path: KeyPath) -> str:
    """The error text, checked to be one line about the offending key path."""
    text = _validation_error(config)
    assert text is not None, f"{_dotted(path)} accepted an invalid value"
    assert "\n" not in text, text
    assert text.startswith(f"{_dotted(path)}: "), text
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
    if "enum" in sub:  # the allowed values say more than their type
        assert f" must be one of {_allowed_words(sub)}" in text, text
    else:
        assert text.endswith(" must be " + " or ".join(TYPE_WORDS[t] for t in _declared(sub)))


def _outside(sub: dict) -> st.SearchStrategy[tuple[Any, str]]:
    """Values beyond one of the key's bounds, with how the error states that bound."""
    integer = "number" not in _declared(sub)
    floats = {"allow_nan": False, "allow_infinity": False}
    options = []
    if "minimum" in sub:
        low = sub["minimum"]
        below = st.integers(max_value=low - 1) if integer else st.floats(max_value=low, **floats)
        options.append(below.filter(lambda x: x < low).map(lambda x: (x, f"at least {low}")))
    if "exclusiveMinimum" in sub:
        low = sub["exclusiveMinimum"]
        below = st.integers(max_value=low) if integer else st.floats(max_value=low, **floats)
        options.append(below.map(lambda x: (x, f"more than {low}")))
    if "maximum" in sub:
        high = sub["maximum"]
        above = st.integers(min_value=high + 1) if integer else st.floats(min_value=high, **floats)
        options.append(above.filter(lambda x: x > high).map(lambda x: (x, f"at most {high}")))
    if "exclusiveMaximum" in sub:
        high = sub["exclusiveMaximum"]
        above = st.integers(min_value=high) if integer else st.floats(min_value=high, **floats)
        options.append(above.map(lambda x: (x, f"less than {high}")))
    return st.one_of(options)


@PROPERTIES
@given(data=st.data())
def test_out_of_range_number_fails_naming_key_and_bound(data: st.DataObject):
    path, sub = data.draw(st.sampled_from(RANGED), label="key")
    value, bound = data.draw(_outside(sub), label="value")
    text = _failure(_with_value(path, value), path)
    assert text.endswith(f" must be {bound}"), text


@PROPERTIES
@given(data=st.data())
def test_unknown_enum_value_fails_naming_key_and_allowed_values(data: st.DataObject):
    path, sub = data.draw(st.sampled_from(ENUMS), label="key")
    value = data.draw(st.text(max_size=12).filter(lambda v: v not in sub["enum"]), label="value")
    text = _failure(_with_value(path, value), path)
    assert f" must be one of {_allowed_words(sub)}" in text


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
    assert f" must match {pattern.removesuffix(NEWLINE_GUARD)}" in text


def _patterns(schema: Any) -> Iterator[str]:
    """Every regular expression anywhere in the schema, key names' included."""
    if isinstance(schema, dict):
        if isinstance(schema.get("pattern"), str):
            yield schema["pattern"]
        for sub in schema.values():
            yield from _patterns(sub)
    elif isinstance(schema, list):
        for sub in schema:
            yield from _patterns(sub)


@pytest.mark.parametrize("pattern", sorted(set(_patterns(SCHEMA))))
def test_every_pattern_refuses_a_trailing_newline(pattern: str):
    # Python's `$` matches before a final newline, so a pattern without the guard lets
    # "name\n" through to become a folder name.
    assert pattern.endswith(f"${NEWLINE_GUARD}"), pattern


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
    text = _validation_error(config)
    assert text is not None and "\n" not in text, text
    assert text.startswith(f"{_dotted((*path, name))}: ") and "is not a known key" in text
    suggested = re.search(r"; did you mean (\S+)\?$", text)
    if suggested:
        assert suggested[1] in {_dotted((*path, known)) for known in sub["properties"]}
    else:
        assert text.endswith(", ".join(sub["properties"]))


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


@pytest.mark.parametrize(
    ("mistake", "line"),
    [
        ({"max_new_token": 8}, "max_new_token: 8 is not a known key; did you mean max_new_tokens?"),
        (
            {"dataset": {"sorce": "folder"}},
            'dataset.sorce: "folder" is not a known key; did you mean dataset.source?',
        ),
        (
            {"variants": {"fast": {"expert": "grouped"}}},
            'variants.fast.expert: "grouped" is not a known key; did you mean '
            "variants.fast.experts?",
        ),
        (
            {"dataset.path": "/data"},
            'dataset.path: "/data" is not a known key; nest it: dataset: {path: ...}',
        ),
        (
            {"dtype": "bfloat61"},
            'dtype: "bfloat61" must be one of auto, bfloat16, float16, '
            "float32; did you mean bfloat16?",
        ),
        (
            {"variants": {"a b": {}}},
            'variants: the name "a b" must match ^[A-Za-z0-9][A-Za-z0-9_-]*$',
        ),
    ],
)
def test_each_mistake_is_one_line_with_a_suggestion_where_one_is_close(mistake: dict, line: str):
    assert _validation_error(mistake) == line


def test_several_mistakes_give_one_line_each_in_key_order():
    config = {"shards": "two", "repeats": 0, "zzz": 1, "model": {"seed": -1, "preset": True}}
    lines = _validation_error(config).splitlines()
    assert lines == [
        "model.preset: true must be one of auto, full, small",
        "model.seed: -1 must be at least 0",
        "repeats: 0 must be at least 1",
        'shards: "two" must be a whole number',
        f"zzz: 1 is not a known key; the keys are {', '.join(SCHEMA['properties'])}",
    ]


def test_nested_defaults_are_filled_as_the_workflow_reads_them():
    config: dict = {"dataset": {"path": "/data"}}
    check_config(config, SCHEMA)
    assert config["dataset"]["synthetic_pages"] == 24 and config["dataset"]["path"] == "/data"
    assert config["model"]["overrides"] == {} and config["model"]["checkpoint"] is None
    assert config["telemetry"]["interval_ms"] == 20
    config["model"]["overrides"]["decoder"] = {"layers": 1}
    fresh: dict = {}
    check_config(fresh, SCHEMA)
    assert fresh["model"]["overrides"] == {}, "a default must not be shared between configs"


def test_each_line_names_the_file_or_option_the_value_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)  # files inside the working directory are named relative to it
    mine = write_config(tmp_path, {"max_crops": 12, "dataset": {"path": "/data"}})
    default_file = REPO / "config" / "config.yaml"
    sources = ConfigSources.read([default_file, mine], {"dtype": "fp8", "dataset": {"sorce": 1}})
    config = copy.deepcopy(DEFAULT_CONFIG)
    config.update(max_crops=12, dtype="fp8")
    config["dataset"].update(path="/data", sorce=1)
    assert _validation_error(config, sources).splitlines() == [
        "--config: dataset.sorce: 1 is not a known key; did you mean dataset.source?",
        '--config: dtype: "fp8" must be one of auto, bfloat16, float16, float32',
        "test-config.yaml: max_crops: 12 must be at most 9",
    ]
    assert sources.origin("dataset.path") == "test-config.yaml"
    assert sources.origin(("dataset", "source")) == str(default_file)
    assert sources.origin("dataset.image_roots") is None
    assert sources.label("device", "device: cuda ...") == f"{default_file}: device: cuda ..."
    assert sources.label("dataset.image_roots", "x") == "x"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("config-checks"))


def _dry_run_lines(workdir: Path, *args: str) -> list[str]:
    """Everything a dry run prints, checked to fail in a few lines before any job."""
    result = snakemake(workdir, "-n", *args, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Job stats" not in output and "Traceback" not in output, output
    lines = output.strip().splitlines()
    assert len(lines) <= 5, output
    return lines


def _dry_run_error(workdir: Path, overrides: dict) -> str:
    """Output of a dry run with `overrides` as a --configfile, checked as above."""
    config = write_config(workdir, overrides)
    return "\n".join(_dry_run_lines(workdir, "--configfile", str(config)))


def test_missing_dataset_folder_is_named_before_any_job(scratch: Path):
    missing = "data/no-such-pages"
    output = _dry_run_error(
        scratch, {**FAST_CONFIG, "dataset": {"source": "folder", "path": missing}}
    )
    assert f"test-config.yaml: dataset.path: {missing} does not exist" in output


def test_missing_list_file_is_named_before_any_job(scratch: Path):
    missing = "lists/no-such-list.txt"
    output = _dry_run_error(scratch, {**FAST_CONFIG, "subset": {"n": 3, "list_file": missing}})
    assert f"test-config.yaml: subset.list_file: {missing} does not exist" in output


def test_misspelt_key_on_the_command_line_gets_a_suggestion(scratch: Path):
    lines = _dry_run_lines(scratch, "--config", "max_new_token=8")
    assert "--config: max_new_token: 8 is not a known key; did you mean max_new_tokens?" in lines


def test_config_file_mistakes_are_one_line_each_naming_the_file(scratch: Path):
    output = _dry_run_error(
        scratch, {**FAST_CONFIG, "repeat": 3, "max_crops": 12, "operators": {"images": "two"}}
    )
    assert "test-config.yaml: repeat: 3 is not a known key; did you mean repeats?" in output
    assert "test-config.yaml: max_crops: 12 must be at most 9" in output
    assert 'test-config.yaml: operators.images: "two" must be a whole number' in output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_a_gpu_names_the_config_file_that_asked_for_it(scratch: Path):
    output = _dry_run_error(scratch, {**FAST_CONFIG, "device": "cuda"})
    assert (
        "test-config.yaml: device: cuda was requested but no CUDA GPU is visible; "
        "set device: auto or cpu"
    ) in output
    assert "config/config.yaml" not in output.split("extended by", 1)[-1]

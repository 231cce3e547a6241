"""The run configuration checked against its schema before any job: one line per mistake.

Each line names the file the value came from (the workflow's config file, a `--configfile`,
or `--config` on the command line), the key path, the value and what is allowed; an unknown
key gets the closest known name. Missing keys get the schema's defaults, nested ones too, as
`snakemake.utils.validate` fills them, so the workflow can read every key.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

COMMAND_LINE = "--config"
TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "null": "null",
    "object": "a mapping of keys",
    "array": "a list",
}
BOUND_WORDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "more than",
    "exclusiveMaximum": "less than",
}
_SHOWN_CHARS = 60
# A pattern ends in this so that `$` does not match before a final newline, as in Python it does.
NEWLINE_GUARD = "(?!\\n)"

KeyPath = tuple[str, ...]


class ConfigError(ValueError):
    """The configuration breaks its schema; the message has one line per mistake."""


@dataclass(frozen=True)
class ConfigSources:
    """Where the configuration's values came from: (name, values) layers, lowest first.

    The workflow's config file, then each `--configfile` in the order given, then `--config`;
    a later layer overrides an earlier one key by key, as Snakemake merges them.
    """

    layers: tuple[tuple[str, Mapping[str, Any]], ...] = ()

    @classmethod
    def read(
        cls,
        files: Sequence[str | os.PathLike[str]],
        command_line: Mapping[str, Any] | None = None,
    ) -> ConfigSources:
        """The layers of `files` (lowest precedence first) and the `--config` values."""
        layers = [(_shown_path(Path(f)), _load(Path(f))) for f in files]
        if command_line:
            layers.append((COMMAND_LINE, dict(command_line)))
        return cls(tuple(layers))

    @classmethod
    def of_workflow(cls, workflow: Any) -> ConfigSources:
        """The layers of a Snakemake workflow: its own config file, then every --configfile
        in order, then --config (Snakemake merges them in that order)."""
        settings = workflow.config_settings
        given = [Path(path) for path in workflow.overwrite_configfiles]
        given_resolved = {path.resolve() for path in given}
        own = [
            path
            for path in workflow.configfiles
            if Path(path).resolve() not in given_resolved
            and not settings.replace_workflow_config
        ]
        return cls.read([*own, *given], settings.config)

    def origin(self, key: str | KeyPath) -> str | None:
        """The layer that set `key` (dotted or a path); None when the schema's default holds."""
        path = tuple(key.split(".")) if isinstance(key, str) else key
        for name, values in reversed(self.layers):
            if _holds(values, path):
                return name
        return None

    def label(self, key: str | KeyPath, message: str) -> str:
        """`message` about `key`, led by the name of the file (or --config) that set it."""
        origin = self.origin(key)
        return f"{origin}: {message}" if origin else message


def load_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config schema (YAML or JSON)."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def check_config(
    config: dict[str, Any], schema: Mapping[str, Any], sources: ConfigSources | None = None
) -> None:
    """Fill `config`'s missing keys with the schema's defaults; raise ConfigError if invalid."""
    sources = sources or ConfigSources()
    errors = sorted(_FillingValidator(schema).iter_errors(config), key=_preference)
    mistakes: dict[KeyPath, str] = {}
    for error in errors:
        for path, text in _read(error):
            mistakes.setdefault(path, text)  # one line per key: the allowed values first
    if mistakes:
        lines = [
            sources.label(path, f"{_dotted(path)}: {mistakes[path]}") for path in sorted(mistakes)
        ]
        raise ConfigError("\n".join(lines))


def _fill_defaults(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """Set each missing property to a copy of its default, then validate the properties."""
    if validator.is_type(instance, "object"):
        for name, sub in properties.items():
            if "default" in sub:
                instance.setdefault(name, copy.deepcopy(sub["default"]))
    yield from _PROPERTIES(validator, properties, instance, schema)


_PROPERTIES = Draft202012Validator.VALIDATORS["properties"]
_FillingValidator = validators.extend(Draft202012Validator, {"properties": _fill_defaults})


def _preference(error: ValidationError) -> int:
    """Which of several errors on one key says most: its allowed values, then its type."""
    order = ("enum", "type")
    return order.index(error.validator) if error.validator in order else len(order)


def _read(error: ValidationError) -> list[tuple[KeyPath, str]]:
    """(key path, what is wrong there) for each mistake in `error`: an object with several
    unknown keys holds several."""
    path: KeyPath = tuple(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = list(error.schema.get("properties", {}))
        return [
            ((*path, name), f"{_shown(value)} {_unknown_key(path, name, known)}")
            for name, value in error.instance.items()
            if name not in known
        ]
    if "propertyNames" in error.relative_schema_path:
        pattern = _readable(error.validator_value)
        return [(path, f"the name {_shown(error.instance)} must match {pattern}")]
    return [(path, f"{_shown(error.instance)} {_problem(error)}")]


def _problem(error: ValidationError) -> str:
    """What is wrong with a value and what is allowed, in words."""
    kind, allowed = error.validator, error.validator_value
    if kind == "type":
        types = [allowed] if isinstance(allowed, str) else allowed
        return "must be " + " or ".join(TYPE_WORDS.get(t, t) for t in types)
    if kind == "enum":
        shown = [json.dumps(value) if isinstance(value, bool) else str(value) for value in allowed]
        return f"must be one of {', '.join(shown)}" + _close_match(str(error.instance), shown)
    if kind in BOUND_WORDS:
        return f"must be {BOUND_WORDS[kind]} {allowed}"
    if kind == "pattern":
        description = error.schema.get("description")
        reason = f" ({description.rstrip('.')})" if description else ""
        return f"must match {_readable(allowed)}{reason}"
    return error.message.splitlines()[0]


def _readable(pattern: str) -> str:
    """A schema pattern without its trailing-newline guard, which only Python's `$` needs."""
    return pattern.removesuffix(NEWLINE_GUARD)


def _unknown_key(path: KeyPath, name: str, known: list[str]) -> str:
    """The complaint about an unknown key: the closest known name, else every known one."""
    head, _, rest = name.partition(".")
    if rest and head in known:
        return f"is not a known key; nest it: {head}: {{{rest}: ...}}"
    hint = _close_match(name, known, prefix=path)
    if hint:
        return "is not a known key" + hint
    where = f" in {_dotted(path)}" if path else ""
    return f"is not a known key; the keys{where} are {', '.join(known)}"


def _close_match(word: str, choices: list[str], prefix: KeyPath = ()) -> str:
    """'; did you mean X?' for the choice closest to `word`, or '' when none is close."""
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {_dotted((*prefix, matches[0]))}?" if matches else ""


def _dotted(path: KeyPath) -> str:
    return ".".join(path) or "the configuration"


def _shown(value: Any) -> str:
    """A value as it would be written in YAML/JSON, cut short when long."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _holds(values: Any, path: KeyPath) -> bool:
    """Whether the nested mapping `values` sets the key at `path`."""
    for name in path:
        if not isinstance(values, Mapping) or name not in values:
            return False
        values = values[name]
    return True


def _load(path: Path) -> Mapping[str, Any]:
    """A config file's values (Snakemake has already read it, so it parses)."""
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    return values if isinstance(values, Mapping) else {}


def _shown_path(path: Path) -> str:
    """`path` relative to the working directory when inside it, as the user would type it."""
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)

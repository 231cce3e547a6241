"""Typed JSON documents: dataclasses read from and written to plain JSON values, field by
field from their type hints, and the schema of a class written out as Markdown.

What a document holds is written once, as dataclasses whose fields carry a `help` text in
their metadata (and `key`, where the JSON name is no Python name, e.g. `pass`). Reading is
tolerant of age and strict about kind: a field with a default may be absent (a document
written before it existed), a key no field names is left out (what an older document held
under a name since retired), and a value of the wrong kind raises a `DocumentError` naming
its key path. A class whose older documents used a key with another meaning defines
`upgrade(data)`, which returns the mapping as the class reads it. Writing gives every field,
None included, so a document written now has every key.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
_NONE = type(None)


class DocumentError(ValueError):
    """A document value of the wrong kind, or a required key missing; the message names the
    document and the key path."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved type hint of each field of dataclass `cls`."""
    return typing.get_type_hints(cls)


def described(
    help: str,
    *,
    factory: Callable[[], Any] | None = None,
    key: str | None = None,
    required: bool = False,
) -> Any:
    """A dataclass field with its `help` text (and the JSON `key` it is written under, where
    that is no Python name): None when absent from what is read, or `factory()`; a
    `required` field must be present."""
    metadata = {"help": help} | ({"key": key} if key else {})
    if required:
        return dataclasses.field(metadata=metadata)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=None, metadata=metadata)


def json_key(field: dataclasses.Field[Any]) -> str:
    """The key a field is written under: its metadata's `key`, else its name."""
    return field.metadata.get("key", field.name)


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return (
        field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
    )


def _kind_words(kind: Any) -> str:
    """What `kind` is called in an error: "a number", "an object", ..."""
    if dataclasses.is_dataclass(kind) or typing.get_origin(kind) in (dict, Mapping):
        return "an object"
    if typing.get_origin(kind) is list:
        return "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, str(kind)
    )


def _fail(where: str, path: str, expected: str, value: Any) -> DocumentError:
    return DocumentError(f"{where}: {path or 'the document'}: expected {expected}, got {value!r}")


def read_as(kind: Any, value: Any, where: str, path: str = "") -> Any:
    """`value` (plain JSON) read as `kind`: a dataclass, `X | None`, `list[X]`,
    `dict[str, X]`, an Enum, a Literal, `Any` or a JSON scalar type. Numbers keep the type
    they were written with (1 stays 1 where a float is expected, 3e9 stays 3e9 where an
    integer is). `where` names the document
    in errors; `path` is the key path read so far."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and _NONE in args:
            return None
        (inner,) = [arg for arg in args if arg is not _NONE]
        return read_as(inner, value, where, path)
    if value is None:
        raise _fail(where, path, _kind_words(kind), value)
    if dataclasses.is_dataclass(kind):
        return _read_dataclass(kind, value, where, path)
    if origin is list:
        if not isinstance(value, list):
            raise _fail(where, path, "a list", value)
        return [read_as(args[0], item, where, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _fail(where, path, "an object", value)
        return {
            str(key): read_as(args[1], item, where, f"{path}.{key}") for key, item in value.items()
        }
    if origin is typing.Literal:
        if value not in args:
            raise _fail(where, path, " or ".join(map(repr, args)), value)
        return value
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            allowed = " or ".join(repr(member.value) for member in kind)
            raise _fail(where, path, allowed, value) from None
    return _read_scalar(kind, value, where, path)


def _read_scalar(kind: type, value: Any, where: str, path: str) -> Any:
    """A JSON string, boolean or number, checked against `kind`."""
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        # JSON has one kind of number: a whole one written as 3e9 is an integer too.
        whole = isinstance(value, float) and value.is_integer()
        ok = (isinstance(value, int) or whole) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise _fail(where, path, _kind_words(kind), value)
    return value


def _read_dataclass(cls: type[T], value: Any, where: str, path: str) -> T:
    """An instance of dataclass `cls` from a JSON object (after its `upgrade`, if any)."""
    if not isinstance(value, Mapping):
        raise _fail(where, path, f"an object ({cls.__name__})", value)
    upgrade = getattr(cls, "upgrade", None)
    data = upgrade(value) if upgrade is not None else value
    hints = _hints(cls)
    values = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = json_key(field)
        inner = f"{path}.{key}" if path else key
        if key in data:
            values[field.name] = read_as(hints[field.name], data[key], where, inner)
        elif not _has_default(field):
            raise DocumentError(f"{where}: {inner}: missing")
    return cls(**values)


def to_plain(value: Any) -> Any:
    """A dataclass (every field, None included, under its JSON key), list, mapping, Enum or
    scalar as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            json_key(field): to_plain(getattr(value, field.name))
            for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


# --- the schema, written out --------------------------------------------------------------


def type_words(kind: Any) -> str:
    """A type hint as the schema page writes it ("number or null", "list of `Failure`")."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return "any JSON value"
    if origin in (types.UnionType, typing.Union):
        inner = [type_words(arg) for arg in args if arg is not _NONE]
        return " or ".join(inner) + (" or null" if _NONE in args else "")
    if dataclasses.is_dataclass(kind):
        return f"[`{kind.__name__}`](#{kind.__name__.lower()})"
    if origin is list:
        return f"list of {type_words(args[0])}"
    if origin in (dict, Mapping):
        return f"map of {type_words(args[0])} to {type_words(args[1])}"
    if origin is typing.Literal:
        return " or ".join(f'`"{arg}"`' for arg in args)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return " or ".join(f'`"{member.value}"`' for member in kind)
    return {bool: "boolean", int: "integer", float: "number", str: "string"}[kind]


def _nested(kind: Any) -> Iterator[type]:
    """The dataclasses a type hint refers to."""
    if dataclasses.is_dataclass(kind):
        yield kind  # type: ignore[misc]
    for arg in typing.get_args(kind):
        yield from _nested(arg)


def classes_of(root: type) -> list[type]:
    """`root` and every dataclass its fields refer to, each once, in reading order."""
    found: list[type] = []
    pending = [root]
    while pending:
        cls = pending.pop(0)
        if cls in found:
            continue
        found.append(cls)
        pending += [c for f in dataclasses.fields(cls) for c in _nested(_hints(cls)[f.name])]
    return found


def undescribed(root: type) -> list[str]:
    """`Class.field` of each field under `root` without a `help` text."""
    return [
        f"{cls.__name__}.{field.name}"
        for cls in classes_of(root)
        for field in dataclasses.fields(cls)
        if not field.metadata.get("help")
    ]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def schema_markdown(root: type) -> str:
    """One section per dataclass under `root`: its docstring, then a table of its keys, their
    types and what each holds (every field's `help`)."""
    lines: list[str] = []
    for cls in classes_of(root):
        doc = " ".join((cls.__doc__ or "").split())
        lines += [f"## {cls.__name__}", "", doc, "", "| key | type | what it is |"]
        lines.append("|---|---|---|")
        hints = _hints(cls)
        for field in dataclasses.fields(cls):
            kind = type_words(hints[field.name])
            lines.append(f"| `{json_key(field)}` | {kind} | {_cell(field.metadata['help'])} |")
        lines.append("")
    return "\n".join(lines)

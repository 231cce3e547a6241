"""config/README.md generated from the config schema, so the two never drift.

Usage: python -m vlmprof.config_docs workflow/schemas/config.schema.yaml > config/README.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HEADER = """# Configuration

`config/config.yaml` describes one run; `snakemake` validates it against
`workflow/schemas/config.schema.yaml` before any job starts. Override keys on the command
line (`--config run_name=x`) or with another file (`--configfile my.yaml`, nested keys
merge); `config/examples/` holds ready-made files. This page is generated from the schema
(`python -m vlmprof.config_docs workflow/schemas/config.schema.yaml > config/README.md`).

| key | type | default | allowed | what it is |
|---|---|---|---|---|
"""


def _allowed(spec: dict[str, Any]) -> str:
    """Allowed values of one key in words."""
    if "enum" in spec:
        shown = (json.dumps(value) if isinstance(value, bool) else value for value in spec["enum"])
        return ", ".join(f"`{value}`" for value in shown)
    parts = []
    if "pattern" in spec:
        parts.append(f"matches `{spec['pattern']}`".replace("|", "\\|"))
    for bound, word in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<=")):
        if bound in spec:
            parts.append(f"{word} {spec[bound]}")
    return ", ".join(parts)


def _rows(
    properties: dict[str, Any], prefix: str = "", entries_seen: dict[int, str] | None = None
) -> list[str]:
    """One row per key of `properties` and of the sections under them, each key dotted
    after `prefix`; `entries_seen` maps the entry schemas of named mappings documented
    already (by identity: a YAML alias repeats the same object) to where."""
    seen = {} if entries_seen is None else entries_seen
    rows = []
    for name, spec in properties.items():
        key = f"{prefix}{name}"
        kind = spec.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        default = json.dumps(spec.get("default")) if "default" in spec else ""
        entries = spec.get("additionalProperties")
        described = spec.get("description", "")
        if isinstance(entries, dict) and id(entries) in seen:
            described += f" Each entry takes the keys of `{seen[id(entries)]}`."
        rows.append(f"| `{key}` | {kind} | `{default}` | {_allowed(spec)} | {described} |")
        if spec.get("type") == "object" and "properties" in spec and name != "overrides":
            rows.extend(_rows(spec["properties"], f"{key}.", seen))
        if isinstance(entries, dict) and "properties" in entries and id(entries) not in seen:
            # A mapping of user-chosen names (variants): document the keys of each entry,
            # once where another mapping's entries are the same.
            seen[id(entries)] = f"{key}.<name>"
            rows.extend(_rows(entries["properties"], f"{key}.<name>.", seen))
    return rows


def schema_markdown(schema: dict[str, Any]) -> str:
    """The configuration reference as Markdown: one row per key, nested keys dotted."""
    return HEADER + "\n".join(_rows(schema["properties"])) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the reference for the schema file given as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    schema = yaml.safe_load(Path(args[0]).read_text(encoding="utf-8"))
    sys.stdout.write(schema_markdown(schema))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

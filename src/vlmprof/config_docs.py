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


def _rows(properties: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for name, spec in properties.items():
        key = f"{prefix}{name}"
        kind = spec.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        default = json.dumps(spec.get("default")) if "default" in spec else ""
        rows.append(
            f"| `{key}` | {kind} | `{default}` | {_allowed(spec)} | {spec.get('description', '')} |"
        )
        if spec.get("type") == "object" and "properties" in spec and name != "overrides":
            rows.extend(_rows(spec["properties"], prefix=f"{key}."))
        entries = spec.get("additionalProperties")
        if isinstance(entries, dict) and "properties" in entries:
            # A mapping of user-chosen names (variants): document the keys of each entry.
            rows.extend(_rows(entries["properties"], prefix=f"{key}.<name>."))
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

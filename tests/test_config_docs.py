"""The configuration reference, the schema and the default config agree."""

from __future__ import annotations

import yaml

from tests.workflow_helpers import REPO
from vlmprof.config_docs import schema_markdown

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def _keys(properties: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, spec in properties.items():
        keys.add(prefix + name)
        if spec.get("type") == "object" and "properties" in spec and name != "overrides":
            keys |= _keys(spec["properties"], f"{prefix}{name}.")
    return keys


def test_config_readme_is_generated_from_the_schema():
    assert (REPO / "config/README.md").read_text() == schema_markdown(SCHEMA), (
        "config/README.md is stale: python -m vlmprof.config_docs "
        "workflow/schemas/config.schema.yaml > config/README.md"
    )


def test_every_schema_key_has_a_description_and_a_default():
    def check(properties: dict, prefix: str = "") -> None:
        for name, spec in properties.items():
            assert spec.get("description"), f"{prefix}{name} has no description"
            assert "default" in spec or name in ("sam", "clip", "decoder"), f"{prefix}{name}"
            if spec.get("type") == "object" and "properties" in spec:
                check(spec["properties"], f"{prefix}{name}.")

    check(SCHEMA["properties"])


def test_default_config_sets_every_documented_top_level_key():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert set(config) == set(SCHEMA["properties"])
    documented = _keys(SCHEMA["properties"])
    for section, values in config.items():
        if isinstance(values, dict) and section != "model":
            assert {f"{section}.{key}" for key in values} <= documented


def test_named_entries_an_alias_repeats_are_documented_once():
    # The best paths' switches are a variant's (one YAML anchor): their keys are listed
    # under variants.<name> and pointed to, not listed again.
    schema = SCHEMA["properties"]
    assert schema["best_paths"]["properties"]["switches"]["additionalProperties"] is (
        schema["variants"]["additionalProperties"]
    )
    readme = schema_markdown(SCHEMA)
    assert "| `variants.<name>.decode` |" in readme
    assert "`best_paths.switches.<name>." not in readme
    row = next(line for line in readme.splitlines() if line.startswith("| `best_paths.switches`"))
    assert row.endswith("Each entry takes the keys of `variants.<name>`. |")
    # A mapping whose entries are a section documented under its own key is still listed.
    assert "| `models.<name>.architecture` |" in readme

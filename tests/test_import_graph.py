"""The committed import graph is the library's, drawn from the import-linter contract."""

from __future__ import annotations

from pathlib import Path

from vlmprof.jobs.import_graph import contract_layers, import_graph_dot, unit_of

REPO = Path(__file__).resolve().parents[1]


def test_layers_come_from_the_contract_top_first():
    layers = contract_layers(REPO / "pyproject.toml")
    assert layers[0] == ["vlmprof.jobs"]
    flat = [unit for layer in layers for unit in layer]
    assert (
        flat.index("vlmprof.report") < flat.index("vlmprof.metrics") < flat.index("vlmprof.models")
    )
    assert "vlmprof.stages" in layers[-2]


def test_a_module_belongs_to_its_package_not_to_a_namesake_prefix():
    units = ["vlmprof.device", "vlmprof.device_choice", "vlmprof.models"]
    assert unit_of("vlmprof.device_choice", units) == "vlmprof.device_choice"
    assert unit_of("vlmprof.models.deepseek_ocr.dims", units) == "vlmprof.models"
    assert unit_of("vlmprof.elsewhere", units) is None


def test_committed_import_graph_is_current():
    committed = (REPO / "docs" / "importgraph.dot").read_text()
    assert committed == import_graph_dot(REPO / "pyproject.toml"), (
        "docs/importgraph.dot is out of date: run `snakemake importgraph`"
    )
    # Every edge points down the layers (what lint-imports enforces), so the picture reads
    # top to bottom.
    layers = contract_layers(REPO / "pyproject.toml")
    rank = {u.removeprefix("vlmprof."): i for i, layer in enumerate(layers) for u in layer}
    edges = [line.split('"') for line in committed.splitlines() if "->" in line]
    assert all(rank[parts[1]] < rank[parts[3]] for parts in edges)

"""The library's import graph, drawn by layer: one node per package or ground module, an
edge where any module of one imports any of the other.

The layers are read from the import-linter contract in pyproject.toml, the one place they
are written down, so the picture in docs/ARCHITECTURE.md shows what CI holds.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

from vlmprof.atomic import write_text_atomic
from vlmprof.jobs.docs import dot_to_svg

HEADER = """digraph imports {
    graph[bgcolor=white, margin=0, rankdir=TB, nodesep=0.25, ranksep=0.35];
    node[shape=box, style=rounded, fontname=sans, fontsize=10, penwidth=1.5];
    edge[color=grey, arrowsize=0.6];
"""


def contract_layers(pyproject: str | Path) -> list[list[str]]:
    """The layers of the `layers` contract, top first, each a list of module names."""
    config = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(contract["layers"] for contract in contracts if contract["type"] == "layers")
    return [[name.strip() for name in layer.split("|")] for layer in layers]


def unit_of(module: str, units: list[str]) -> str | None:
    """The layer unit (package or ground module) that `module` belongs to, if any."""
    return next((u for u in units if module == u or module.startswith(f"{u}.")), None)


def layer_edges(root: str, units: list[str]) -> list[tuple[str, str]]:
    """Sorted (importer, imported) pairs of units, from every direct import under `root`."""
    graph = grimp.build_graph(root)
    edges = set()
    for module in graph.modules:
        source = unit_of(module, units)
        for imported in graph.find_modules_directly_imported_by(module):
            target = unit_of(imported, units)
            if source and target and source != target:
                edges.add((source, target))
    return sorted(edges)


def import_graph_dot(pyproject: str | Path, root: str = "vlmprof") -> str:
    """DOT text of the import graph, one rank per layer, nodes and edges sorted."""
    layers = contract_layers(pyproject)
    units = [unit for layer in layers for unit in layer]
    short = {unit: unit.removeprefix(f"{root}.") for unit in units}
    body = []
    for layer in layers:
        names = " ".join(f'"{short[unit]}";' for unit in layer)
        body.append(f"    {{ rank=same; {names} }}")
    body += [f'    "{short[a]}" -> "{short[b]}";' for a, b in layer_edges(root, units)]
    return HEADER + "\n".join(body) + "\n}\n"


def import_graph(pyproject: str, dot: str, svg: str) -> None:
    """Draw the library's import graph by layer as DOT and SVG."""
    graph = import_graph_dot(pyproject)
    write_text_atomic(dot, graph)
    write_text_atomic(svg, dot_to_svg(graph))

"""Jobs of the docs step: the committed drawing of the workflow's rule graph.

Snakemake numbers the nodes and orders the edges differently from run to run; naming each
node after its rule and sorting the lines makes the committed files change only when the
graph does.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys

from vlmprof.atomic import write_text_atomic

log = logging.getLogger(__name__)

NODE = re.compile(r'^\s*(\w+)\[label = "(\w+)", color = "([^"]+)"')
EDGE = re.compile(r"^\s*(\w+) -> (\w+)\s*;?\s*$")
HEADER = """digraph rulegraph {
    graph[bgcolor=white, margin=0, size="4.5,5.5"];
    node[shape=box, style=rounded, fontname=sans, fontsize=10, penwidth=2];
    edge[penwidth=2, color=grey];
"""


def normalised_dot(raw: str) -> str:
    """The rule graph with rules as node names and nodes and edges in sorted order."""
    lines = raw.splitlines()
    nodes = {m[1]: (m[2], m[3]) for m in map(NODE.match, lines) if m}
    if not nodes:
        raise ValueError("snakemake --rulegraph printed no rules; see the log")
    edges = sorted((nodes[m[1]][0], nodes[m[2]][0]) for m in map(EDGE.match, lines) if m)
    body = [
        f'    {rule}[label = "{rule}", color = "{color}"];'
        for rule, color in sorted(nodes.values())
    ]
    body += [f"    {source} -> {target};" for source, target in edges]
    return HEADER + "\n".join(body) + "\n}\n"


def _stdout(command: list[str], stdin: str | None = None) -> str:
    """Stdout of `command`; its stderr goes to the log, and a failure stops the job."""
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    log.info("%s\n%s", " ".join(command), done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed (exit {done.returncode}); see the log")
    return done.stdout


def dot_to_svg(graph: str) -> str:
    """`graph` (DOT text) drawn as SVG by Graphviz."""
    if shutil.which("dot") is None:
        raise RuntimeError("dot not found: install graphviz (apt-get or conda install graphviz)")
    return _stdout(["dot", "-Tsvg"], stdin=graph)


def rulegraph(snakefile: str, dot: str, svg: str) -> None:
    """Draw the rule graph of the default run (`snakemake --rulegraph`) as DOT and SVG."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", snakefile, "--rulegraph"]
    graph = normalised_dot(_stdout(command))
    write_text_atomic(dot, graph)
    write_text_atomic(svg, dot_to_svg(graph))

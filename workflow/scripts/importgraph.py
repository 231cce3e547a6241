"""Draw the library's import graph by layer (from pyproject.toml's contract) as DOT and SVG."""

from vlmprof.jobs.import_graph import import_graph
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
import_graph(smk.input.pyproject, smk.output.dot, smk.output.svg)

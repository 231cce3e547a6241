"""Draw the rule graph of the default run (`snakemake --rulegraph`) as DOT and SVG."""

from vlmprof.jobs.docs import rulegraph
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
rulegraph(smk.input.snakefile, smk.output.dot, smk.output.svg)

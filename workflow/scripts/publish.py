"""Collect the executed pages under publish/ with an index page."""

from vlmprof.jobs.report import publish
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
publish(smk.input.pages, smk.input.markdown, smk.input.metrics, smk.output.index, **smk.params)

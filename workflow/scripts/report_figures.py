"""Write the engineering report's figures out as PNG files for `snakemake --report`."""

from vlmprof.jobs.report import report_figures
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
report_figures(smk.input.ipynb, smk.output.figures)

"""Nsight Systems timeline of one page's timing run, or a clear note when nsys is missing."""

from vlmprof.jobs.profile import nsight_systems
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
nsight_systems(smk.input.subset, smk.output.summary, **smk.params)

"""Operator pass: torch.profiler over a few pages, separate from the timing pass."""

from vlmprof.jobs.profile import operator_profile
from vlmprof.logs import log_to_file
from vlmprof.progress import job_label

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
label = job_label("operator pass", smk.wildcards)
operator_profile(smk.input.subset, smk.output.operators, progress_label=label, **smk.params)

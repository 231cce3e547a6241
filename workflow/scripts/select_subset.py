"""Build the dataset manifest and pick the pages this run profiles."""

from vlmprof.jobs.dataset import select_subset
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
select_subset(smk.input.dataset, smk.output.subset, **smk.params)

"""Generate the embedded default's document pages and their manifest."""

from vlmprof.jobs.dataset import synthetic_dataset
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
synthetic_dataset(smk.output.manifest, **smk.params)

"""Static compute of every stage, three ways (analytic, FlopCounterMode, fvcore x2)."""

from vlmprof.jobs.static import static_flops
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
static_flops(smk.input.subset, smk.output.json, smk.output.md, **smk.params)

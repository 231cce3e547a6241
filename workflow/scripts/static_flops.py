"""Static compute of every stage, three ways (analytic, FlopCounterMode, fvcore x2)."""

from vlmprof.jobs.static import static_flops
from vlmprof.logs import log_to_file
from vlmprof.progress import job_label

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
label = job_label("FLOP count", smk.wildcards)
static_flops(smk.input.subset, smk.output.json, smk.output.md, progress_label=label, **smk.params)

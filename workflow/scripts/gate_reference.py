"""The gate's run of one shard at a higher precision, fed the baseline's tokens."""

from vlmprof.jobs.gate import gate_reference
from vlmprof.logs import log_to_file
from vlmprof.progress import job_label

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
shard = int(smk.wildcards.shard)
label = job_label(f"gate run of shard {shard}", smk.wildcards)
paths = (smk.input.subset, smk.input.against, smk.output.outputs)
gate_reference(*paths, shard, progress_label=label, **smk.params)

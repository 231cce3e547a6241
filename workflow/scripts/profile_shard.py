"""Timing pass of one shard: every page of the shard x repeats, one JSON line each."""

from vlmprof.jobs.profile import profile_shard
from vlmprof.logs import log_to_file
from vlmprof.progress import job_label

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
shard = int(smk.wildcards.shard)
label = job_label(f"profile shard {shard}", smk.wildcards)
outputs = (smk.output.records, smk.output.outputs)
profile_shard(smk.input.subset, *outputs, shard, progress_label=label, **smk.params)

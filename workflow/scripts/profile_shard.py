"""Timing pass of one shard: every page of the shard x repeats, one JSON line each."""

from vlmprof.jobs.profile import profile_shard
from vlmprof.logs import log_to_file
from vlmprof.progress import job_label

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
shard = int(smk.wildcards.shard)
label = job_label(f"profile shard {shard}", smk.wildcards)
against = dict(smk.input.items()).get("against")  # a gated arm's: the baseline's outputs
profile_shard(smk.input.subset, *smk.output, shard, label, against, **smk.params)

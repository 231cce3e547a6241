"""Timing pass of one shard: every page of the shard x repeats, one JSON line each."""

from vlmprof.jobs.profile import profile_shard
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
shard = int(smk.wildcards.shard)
profile_shard(smk.input.subset, smk.output.records, smk.output.outputs, shard, **smk.params)

"""Per-stage deltas of this run against a baseline run, with a pass/fail verdict; refused
in one line when the two runs measured other pages, config or device (unless forced)."""

from vlmprof.jobs.aggregate import compare
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
compare(smk.input.run, smk.input.baseline, smk.output.table, **smk.params)

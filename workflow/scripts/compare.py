"""Per-stage deltas of this run against a baseline run, with a pass/fail verdict; refused in
one line with exit status 2 when the runs measured other pages, config or device (unless forced)."""

import sys

from vlmprof.jobs.aggregate import compare
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
sys.exit(compare(smk.input.run, smk.input.baseline, smk.output.table, **smk.params))

"""Every variant against the baseline: comparison.json, comparison.csv and comparison.md."""

from vlmprof.jobs.aggregate import compare_variants
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
runs, out = smk.input, smk.output
compare_variants(runs.baseline, runs.metrics, runs.gates, out.json, out.csv, out.md, **smk.params)

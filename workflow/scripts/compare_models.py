"""The compared models, each on its released and its best path, by cost per page:
comparison.json, .csv and .md."""

from vlmprof.jobs.aggregate import compare_models
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
runs, out = smk.input, smk.output
compare_models(runs.metrics, runs.gates, out.json, out.csv, out.md, **smk.params)

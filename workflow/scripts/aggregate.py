"""Aggregate run records into metrics.json and tables (stage_ms, MFU, MBU, per image)."""

from vlmprof.jobs.aggregate import aggregate
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
runs = smk.input  # the timeline only when the operator pass is on
inputs = (runs.records, runs.subset, runs.static, runs.calibration, runs.get("timeline"))
aggregate(*inputs, smk.output.metrics, smk.output.stage_ms, **smk.params)

"""Correctness gate of one variant: its reference outputs against the baseline's."""

from vlmprof.jobs.aggregate import variant_gate
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
outputs, name = smk.input, smk.wildcards.variant
variant_gate(outputs.baseline, outputs.variant, smk.output.gate, name, **smk.params)

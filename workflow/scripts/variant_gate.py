"""Correctness gate of one variant: its outputs, fed the baseline's tokens, against the
baseline's and the oracle's."""

from vlmprof.jobs.gate import variant_gate
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
inputs = {key: list(paths) for key, paths in smk.input.items()}
variant_gate(gate=smk.output.gate, **inputs, **smk.params)

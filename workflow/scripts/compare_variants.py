"""Every variant against the baseline: comparison.json, comparison.csv and comparison.md."""

import json
import logging

from vlmprof.logs import log_to_file
from vlmprof.variants.comparison import BASELINE, compare_variants, read_run, write_comparison

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
names = list(smk.params.names)
metrics, gates = list(smk.input.metrics), list(smk.input.gates)
if not len(names) == len(metrics) == len(gates):
    raise ValueError(
        f"{len(names)} variant names, {len(metrics)} metrics.json and {len(gates)} gate.json:"
        " each variant needs one of each, in the order of the names"
    )
switches = json.loads(smk.params.switches)
baseline = read_run(BASELINE, smk.input.baseline)
variants = [
    read_run(name, path, gate, switches.get(name, {}))
    for name, path, gate in zip(names, metrics, gates, strict=True)
]
comparison = compare_variants(baseline, variants)
write_comparison(comparison, smk.output.json, smk.output.csv, smk.output.md)
logging.getLogger("compare_variants").info(
    "%d variants against the baseline; best per stage: %s", len(variants), comparison["best"]
)

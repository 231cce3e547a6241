"""Per-stage deltas of this run against a baseline run, with a pass/fail verdict."""

from pathlib import Path

from vlmprof.atomic import write_text_atomic
from vlmprof.compare import compare_dirs, to_markdown
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
table, result = compare_dirs(smk.input.baseline, smk.input.run, smk.params.tolerance)
write_text_atomic(Path(smk.output.table), to_markdown(table, result, smk.params.tolerance))

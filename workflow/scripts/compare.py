"""Per-stage deltas of this run against a baseline run, with a pass/fail verdict; refused
in one line when the two runs measured other pages, config or device (unless forced)."""

from pathlib import Path

from vlmprof.atomic import write_text_atomic
from vlmprof.compare import compare_dirs, to_markdown
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
comparison = compare_dirs(
    smk.input.baseline,
    smk.input.run,
    smk.params.tolerance,
    force=smk.params.force,
    include_host_stages=smk.params.include_host_stages,
)
write_text_atomic(Path(smk.output.table), to_markdown(comparison, smk.params.tolerance))

"""Collect the executed pages under publish/ with an index page."""

import json
from pathlib import Path

from vlmprof.logs import log_to_file
from vlmprof.report.publish import write_publish_folder

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
write_publish_folder(
    smk.params.run_name,
    [Path(p) for p in smk.input.pages],
    [Path(p) for p in smk.input.markdown],
    json.loads(Path(smk.input.metrics).read_text()),
    Path(smk.output.index),
)

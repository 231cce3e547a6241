"""Write the engineering report's figures out as PNG files for `snakemake --report`."""

import logging
from pathlib import Path

from vlmprof.logs import log_to_file
from vlmprof.report.notebook_figures import extract_figures

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
written = extract_figures(Path(smk.input.ipynb), Path(smk.output.figures))
logging.getLogger("report_figures").info("%d figures: %s", len(written), [p.name for p in written])

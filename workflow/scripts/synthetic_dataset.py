"""Generate the embedded default's document pages and their manifest."""

from pathlib import Path

from vlmprof.data.synthetic_pages import generate_synthetic_pages
from vlmprof.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821
out = Path(snakemake.output.manifest)  # noqa: F821
generate_synthetic_pages(out.parent, snakemake.params.n_pages, snakemake.params.seed)  # noqa: F821

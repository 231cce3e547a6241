"""Build the dataset manifest and pick the pages this run profiles."""

from pathlib import Path

from vlmprof.data.manifest import build_manifest
from vlmprof.data.subset import select_subset, write_subset
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
manifest = build_manifest(smk.params.source, smk.input.dataset, smk.params.image_root)
list_file = Path(smk.params.list_file) if smk.params.list_file else None
subset = select_subset(manifest, smk.params.n, smk.params.seed, list_file)
write_subset(subset, Path(smk.output.subset))

"""Operator pass: torch.profiler over a few pages, separate from the timing pass."""

import json
from pathlib import Path

import pandas as pd

from vlmprof.data.image_loader import ImageLoadError, load_page
from vlmprof.device import resolve_device
from vlmprof.logs import log_to_file
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.gpu_slot import claim_device
from vlmprof.runtime.operator_profile import run_operator_profile

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
subset = pd.read_csv(smk.input.subset)
pages = []
for image_id, path in zip(subset["image_id"], subset["path"], strict=True):
    if len(pages) == smk.params.images:
        break
    try:
        pages.append((image_id, load_page(Path(path), smk.params.max_pixels)))
    except ImageLoadError:
        continue
spec = json.loads(smk.params.spec)
with claim_device(resolve_device(spec["device"])) as device:
    adapter = build_adapter(ModelSpec(**{**spec, "device": device}))
    run_operator_profile(
        adapter,
        pages,
        max_new_tokens=smk.params.max_new_tokens,
        warmup_rounds=smk.params.warmup_rounds,
        out_dir=Path(smk.output.operators).parent,
        top_n=smk.params.top_n,
    )

"""Timing pass of one shard: every page of the shard x repeats, one JSON line each."""

import json
import logging
from pathlib import Path

import pandas as pd

from vlmprof.device import resolve_device
from vlmprof.logs import log_to_file
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.gpu_slot import claim_device
from vlmprof.runtime.profile_shard import ProfileSettings, profile_images

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
shard = int(smk.wildcards.shard)
subset = pd.read_csv(smk.input.subset)
mine = subset.iloc[shard :: smk.params.shards]
spec = json.loads(smk.params.spec)
images = list(zip(mine["image_id"], mine["path"].map(Path), strict=True))
with claim_device(resolve_device(spec["device"])) as device:
    adapter = build_adapter(ModelSpec(**{**spec, "device": device}))
    settings = ProfileSettings(
        shard=shard, eos_id=adapter.eos_token_id, **json.loads(smk.params.settings)
    )
    logging.getLogger(__name__).info("shard %d: %d pages on %s", shard, len(mine), device)
    profile_images(adapter, images, settings, Path(smk.output.records), Path(smk.output.outputs))

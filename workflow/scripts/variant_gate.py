"""Correctness gate of one variant: its reference outputs against the baseline's."""

import json
import logging

import torch

from vlmprof.atomic import write_json_atomic
from vlmprof.logs import log_to_file
from vlmprof.variants.gate import judge_variant, not_applicable

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
name = smk.wildcards.variant


def merged(paths: list[str]) -> dict:
    """Every shard's per-page outputs in one mapping (image_id -> tensors)."""
    outputs: dict = {}
    for path in paths:
        outputs.update(torch.load(path, map_location="cpu", weights_only=True))
    return outputs


if smk.params.sweep_point:
    switches = json.loads(smk.params.switches)
    changed = ", ".join(f"{key} {value}" for key, value in sorted(switches.items()))
    verdict = not_applicable(name, f"{changed}: a different workload from the baseline")
else:
    verdict = judge_variant(
        name, merged(smk.input.baseline), merged(smk.input.variant), smk.params.tolerance
    )
logging.getLogger(__name__).info("gate %s: %s (%s)", name, verdict["status"], verdict["detail"])
write_json_atomic(smk.output.gate, verdict)

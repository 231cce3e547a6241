"""Static compute of every stage, three ways (analytic, FlopCounterMode, fvcore x2)."""

import json
from pathlib import Path

import pandas as pd

from vlmprof.atomic import write_json_atomic, write_text_atomic
from vlmprof.device import dtype_name, resolve_dtype
from vlmprof.flops.analytic import view_geometry
from vlmprof.flops.static_compute import (
    build_static_compute,
    static_compute_markdown,
    typical_prefill_len,
)
from vlmprof.logs import log_to_file
from vlmprof.models import spec_dims

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
spec = json.loads(smk.params.spec)
dims = spec_dims(spec["name"], spec["preset"], spec["overrides"], spec.get("checkpoint"))
subset = pd.read_csv(smk.input.subset).dropna(subset=["width", "height"])
sizes = zip(subset["width"].astype(int), subset["height"].astype(int), strict=True)
prefill_len = typical_prefill_len(dims, sizes, spec["mode"], spec["max_crops"])
dtype = dtype_name(resolve_dtype(spec["dtype"], spec["device"]))
report = build_static_compute(
    dims,
    modes=list(view_geometry(dims).MODES),
    prefill_len=prefill_len,
    decode_context=prefill_len + smk.params.max_new_tokens // 2,
    dtype=dtype,
    count=True,
)
write_json_atomic(Path(smk.output.json), report)
write_text_atomic(Path(smk.output.md), static_compute_markdown(report))

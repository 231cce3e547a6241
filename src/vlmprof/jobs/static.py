"""Jobs of the static step: every stage's FLOPs and bytes, and the device's reachable peaks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from vlmprof.atomic import write_json_atomic, write_text_atomic
from vlmprof.data.subset import page_sizes
from vlmprof.device_choice import resolved_dtype_name
from vlmprof.flops.analytic import view_geometry
from vlmprof.flops.counted_static import counted_static_compute
from vlmprof.flops.static_compute import (
    build_static_compute,
    mean_decode_context,
    static_compute_markdown,
    typical_prefill_len,
)
from vlmprof.metrics.calibrate import calibrate_peaks as measure_peaks
from vlmprof.models import build_adapter, has_formulas, spec_dims
from vlmprof.models.base import ModelSpec
from vlmprof.runtime.launcher import claimed_placement

# Measured peaks are kept here per device model and dtype; a rerun on the same kind of GPU
# skips the benchmark.
CALIBRATION_CACHE = Path.home() / ".cache" / "vlmprof" / "calibration.json"


def static_flops(
    subset: str, json_out: str, md_out: str, *, spec: str, max_new_tokens: int, progress_label: str
) -> None:
    """Static compute of every stage, three ways (analytic, FlopCounterMode, fvcore), for
    the subset's typical page: its median prefill and a decode step halfway through; for a
    model without formulas, its parameters by part (the timing pass counts its FLOPs)."""
    model = ModelSpec(**json.loads(spec))
    dtype = resolved_dtype_name(model.dtype, model.device)
    if has_formulas(model.name):
        dims = spec_dims(model.name, model.preset, model.overrides, model.checkpoint)
        prefill_len = typical_prefill_len(
            dims, page_sizes(pd.read_csv(subset)), model.mode, model.max_crops
        )
        report = build_static_compute(
            dims,
            modes=list(view_geometry(dims).MODES),
            prefill_len=prefill_len,
            decode_context=mean_decode_context(prefill_len, max_new_tokens),
            dtype=dtype,
            count=True,
            progress_label=progress_label,
        )
    else:
        # The module tree alone, on the meta device: parameters need no weights.
        meta = build_adapter(dataclasses.replace(model, device="meta", dtype=dtype))
        report = counted_static_compute(meta, dtype)
    write_json_atomic(Path(json_out), report)
    write_text_atomic(Path(md_out), static_compute_markdown(report))


def calibrate_peaks(calibration: str, *, device: str, dtype: str, enabled: bool | str) -> None:
    """The device's reachable matmul TFLOP/s and copy bandwidth, or a note that calibration
    is off (`metrics.calibrate: false`); `force` measures again and refreshes the cache."""
    result: dict = {"enabled": False, "reason": "metrics.calibrate is false"}
    if enabled:
        with claimed_placement(device, dtype) as placement:
            force = enabled == "force"
            peaks = measure_peaks(placement, CALIBRATION_CACHE, force=force)
            result = {"enabled": True, **peaks}
    write_json_atomic(Path(calibration), result)

"""Aggregate run records into metrics.json and tables (stage_ms, MFU, MBU, per image)."""

import json
from pathlib import Path

import pandas as pd

from vlmprof.device import dtype_name, resolve_dtype
from vlmprof.logs import log_to_file
from vlmprof.metrics.build import build_metrics, write_metrics
from vlmprof.metrics.environment import collect_environment
from vlmprof.metrics.peaks import resolve_peaks
from vlmprof.models import spec_dims

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
spec = json.loads(smk.params.spec)
config = json.loads(smk.params.config)
dims = spec_dims(spec["name"], spec["preset"], spec["overrides"], spec.get("checkpoint"))
dtype = dtype_name(resolve_dtype(spec["dtype"], spec["device"]))
environment = collect_environment(spec["device"])
environment["device_requested"] = smk.params.device_requested
calibration = json.loads(Path(smk.input.calibration).read_text())
peaks = resolve_peaks(
    environment.get("device_name"),
    dtype,
    smk.params.peak_tflops,
    smk.params.peak_bandwidth_tbps,
    calibration if calibration.get("enabled") else None,
)
metrics, tables = build_metrics(
    record_paths=list(smk.input.records),
    static_compute=json.loads(Path(smk.input.static).read_text()),
    dims=dims,
    dtype=dtype,
    peaks=peaks,
    environment=environment,
    inputs=pd.read_csv(smk.input.subset),
    config={**config, "resolved": spec},
    context_len_mode=smk.params.context_len_mode,
    context_len_fixed=smk.params.context_len_fixed,
    tolerance=smk.params.tolerance,
)
if hasattr(smk.input, "timeline"):
    metrics["timeline"] = json.loads(Path(smk.input.timeline).read_text())
write_metrics(metrics, tables, Path(smk.output.metrics), Path(smk.output.stage_ms).parent)

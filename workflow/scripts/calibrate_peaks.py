"""Measure the device's reachable matmul TFLOP/s and copy bandwidth (cached per device)."""

from pathlib import Path

from vlmprof.atomic import write_json_atomic
from vlmprof.logs import log_to_file
from vlmprof.metrics.calibrate import calibrate_peaks
from vlmprof.runtime.device import dtype_name, resolve_dtype

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
dtype = dtype_name(resolve_dtype(smk.params.dtype, smk.params.device))
result = {"enabled": False, "reason": "metrics.calibrate is false"}
if smk.params.enabled:
    cache = Path.home() / ".cache" / "vlmprof" / "calibration.json"
    result = {"enabled": True, **calibrate_peaks(smk.params.device, dtype, cache)}
write_json_atomic(Path(smk.output.calibration), result)

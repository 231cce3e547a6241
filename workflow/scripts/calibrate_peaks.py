"""Measure the device's reachable matmul TFLOP/s and copy bandwidth (cached per machine key;
metrics.calibrate: force measures again and refreshes the cache)."""

from pathlib import Path

from vlmprof.atomic import write_json_atomic
from vlmprof.logs import log_to_file
from vlmprof.metrics.calibrate import calibrate_peaks
from vlmprof.runtime.device import dtype_name, resolve_device, resolve_dtype
from vlmprof.runtime.gpu_slot import claim_device

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
dtype = dtype_name(resolve_dtype(smk.params.dtype, smk.params.device))
result = {"enabled": False, "reason": "metrics.calibrate is false"}
if smk.params.enabled:
    cache = Path.home() / ".cache" / "vlmprof" / "calibration.json"
    with claim_device(resolve_device(smk.params.device)) as device:
        force = smk.params.enabled == "force"
        result = {"enabled": True, **calibrate_peaks(device, dtype, cache, force=force)}
write_json_atomic(Path(smk.output.calibration), result)

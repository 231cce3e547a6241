"""Measure the device's reachable matmul TFLOP/s and copy bandwidth (cached per machine key;
metrics.calibrate: force measures again and refreshes the cache)."""

from vlmprof.jobs.static import calibrate_peaks
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
calibrate_peaks(smk.output.calibration, **smk.params)

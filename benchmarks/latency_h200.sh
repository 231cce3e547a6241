#!/usr/bin/env bash
# The run behind docs/measurements/latency-h200.md on one GPU: the pipeline with
# config/examples/h200-latency.yaml (baseline, the vision and decode variants and the A/A
# control arm); a tarball of the results (traces excluded; also of a failed run's finished
# jobs) and the log in OUT_DIR.
# Usage: benchmarks/latency_h200.sh OUT_DIR (on the GPU machine: source
# benchmarks/device_env.sh first). Stops at the first failure.
set -euo pipefail
usage="usage: benchmarks/latency_h200.sh OUT_DIR"
out=${1:?$usage}
mkdir -p "$out"
. "$(dirname "$0")/common.sh"
record_source "$out"
record_gpus "$out/gpu.csv" name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu
start=$(date +%s)
# Whatever the pipeline finished is kept, also when it fails (the exit status stays its).
trap 'echo "pipeline wall time: $(( $(date +%s) - start )) s";
    tar czf "$out/h200-latency.tgz" --exclude=traces results/h200-latency' EXIT
run_logged "$out/snakemake.log" 40 \
    snakemake --cores 16 --resources gpu=1 --configfile config/examples/h200-latency.yaml

#!/usr/bin/env bash
# Full-size validation on one GPU: the whole pipeline with config/examples/h100-full.yaml
# under a run name, then a tarball of its results (traces excluded) in OUT_DIR.
# Usage: benchmarks/gpu_validation.sh RUN_NAME OUT_DIR [extra snakemake args...]
# Stops at the first failure; the full Snakemake log is kept in OUT_DIR.
set -euo pipefail
usage="usage: benchmarks/gpu_validation.sh RUN_NAME OUT_DIR [extra snakemake args...]"
run_name=${1:?$usage}
out_dir=${2:?$usage}
shift 2
mkdir -p "$out_dir"
. "$(dirname "$0")/common.sh"
record_source "$out_dir"
record_gpus "$out_dir/gpu-$run_name.csv" \
    name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu
start=$(date +%s)
run_logged "$out_dir/snakemake-$run_name.log" 40 \
    snakemake --cores 4 --resources gpu=1 --configfile config/examples/h100-full.yaml \
    --config run_name="$run_name" "$@"
echo "pipeline wall time: $(( $(date +%s) - start )) s"
tar czf "$out_dir/$run_name.tgz" --exclude=traces "results/$run_name"
ls -la "$out_dir"

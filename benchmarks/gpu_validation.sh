#!/usr/bin/env bash
# Full-size validation on one GPU: the whole pipeline with config/examples/h100-full.yaml
# under a run name, then a tarball of its results (traces excluded) in OUT_DIR.
# Usage: benchmarks/gpu_validation.sh RUN_NAME OUT_DIR [extra snakemake args...]
set -uo pipefail
run_name=$1
out_dir=$2
shift 2
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
    --format=csv | tee "$out_dir/gpu-$run_name.csv"
start=$(date +%s)
snakemake --cores 4 --resources gpu=1 --configfile config/examples/h100-full.yaml \
    --config run_name="$run_name" "$@" 2>&1 | tail -n 40
echo "pipeline wall time: $(( $(date +%s) - start )) s"
tar czf "$out_dir/$run_name.tgz" --exclude=traces "results/$run_name"
ls -la "$out_dir"

#!/usr/bin/env bash
# One GPU against two: the same pages profiled as one shard on one GPU, then as two shards
# side by side on two GPUs (config/examples/h200-scale-out.yaml), each to metrics.json;
# then benchmarks/scale_out_summary.py compares their stage means and profiling wall times.
# Usage: [GPU_ORDER="2 1"] [CONFIG=file.yaml] benchmarks/scale_out.sh OUT_DIR [extra snakemake args...]
# (GPU_ORDER: which run goes first; the default "1 2" runs the one-GPU run first.)
# Stops at the first failure; each run's full Snakemake log is kept in OUT_DIR.
set -euo pipefail
out_dir=${1:?usage: benchmarks/scale_out.sh OUT_DIR [extra snakemake args...]}
shift
config=${CONFIG:-config/examples/h200-scale-out.yaml}
mkdir -p "$out_dir"
. "$(dirname "$0")/common.sh"
record_source "$out_dir"
record_gpus "$out_dir/gpus.csv" index,name,driver_version,clocks.sm,clocks.max.sm,power.limit
for gpus in ${GPU_ORDER:-1 2}; do
    name="scale-${gpus}gpu"
    start=$(date +%s)
    run_logged "$out_dir/snakemake-$name.log" 8 \
        snakemake --cores 16 --resources gpu="$gpus" --configfile "$config" "$@" \
        --config run_name="$name" shards="$gpus" -- "results/$name/metrics.json"
    echo "$name: pipeline wall time $(( $(date +%s) - start )) s"
done
python3 benchmarks/scale_out_summary.py results/scale-1gpu results/scale-2gpu \
    --json "$out_dir/scale-out.json" --table "$out_dir/compare.md"
tar czf "$out_dir/scale-out.tgz" results/scale-1gpu results/scale-2gpu

#!/usr/bin/env bash
# One pipeline run on whichever GPU is lent, for a measurement page: the pipeline with CONFIG
# (default config/examples/latency.yaml, the one-page latency frontier; its short form
# latency-short.yaml; models.yaml, every model on its released and its best path) and any
# further snakemake arguments (e.g. --config subset='{n: 4}'), then a tarball of the results
# (traces excluded; also of a failed run's finished jobs), the GPUs' names and clocks and
# the log in OUT_DIR. Each config holds its own anchor (the released path, the A/A control)
# in the same run, so the numbers are for the card in gpu.csv. With PIPELINE_TIME_LIMIT_S set,
# snakemake is stopped after that many seconds (one part of a run longer than a device call
# allows) and the script exits 0 with what finished; run it again on the same machine and it
# resumes where it stopped. The tarball leaves out traces and saved outputs (*.pt), which
# only the machine's own later jobs read.
# Usage: benchmarks/pipeline_gpu.sh OUT_DIR [CONFIG [snakemake args...]] (on the GPU
# machine: source benchmarks/device_env.sh first). Stops at the first failure.
set -euo pipefail
usage="usage: benchmarks/pipeline_gpu.sh OUT_DIR [CONFIG [snakemake args...]]"
out=${1:?$usage}
config=${2:-config/examples/latency.yaml}
shift $(( $# < 2 ? $# : 2 ))
run_name=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["run_name"])' \
    "$config")
mkdir -p "$out"
. "$(dirname "$0")/common.sh"
record_source "$out"
record_gpus "$out/gpu.csv" name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu
start=$(date +%s)
# Whatever the pipeline finished is kept, also when it fails (the exit status stays its).
trap 'echo "pipeline wall time: $(( $(date +%s) - start )) s";
    tar czf "$out/$run_name.tgz" --exclude=traces --exclude="*.pt" "results/$run_name"' EXIT
limit=()
if [[ -n "${PIPELINE_TIME_LIMIT_S:-}" ]]; then
    # timeout exits 124 when the limit stopped snakemake: a part, not a failure.
    limit=(timeout "$PIPELINE_TIME_LIMIT_S")
fi
status=0
"${limit[@]}" snakemake --cores 16 --resources gpu=1 --rerun-incomplete --configfile "$config" \
    "$@" > "$out/snakemake.log" 2>&1 || status=$?
if (( status == 124 )); then
    echo "stopped after ${PIPELINE_TIME_LIMIT_S} s; run again to resume"
    tail -n 20 "$out/snakemake.log"
    exit 0
fi
if (( status != 0 )); then
    tail -n 60 "$out/snakemake.log" >&2
    echo "failed (exit $status); whole log in $out/snakemake.log" >&2
    exit "$status"
fi
tail -n 40 "$out/snakemake.log"

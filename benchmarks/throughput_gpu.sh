#!/usr/bin/env bash
# The run meant for the throughput measurement page, on one GPU: the pipeline with
# config/examples/throughput.yaml (and any further snakemake arguments, e.g. --config
# subset='{n: 64}'), through benchmarks/pipeline_gpu.sh (source, GPUs, the log and a tarball
# of the results in OUT_DIR), then each setting's throughput, memory and binding side from
# the run's comparison into OUT_DIR/throughput.md.
# Usage: benchmarks/throughput_gpu.sh OUT_DIR [snakemake args...] (on the GPU machine:
# source benchmarks/device_env.sh first). Stops at the first failure.
set -euo pipefail
out=${1:?usage: benchmarks/throughput_gpu.sh OUT_DIR [snakemake args...]}
shift
here=$(dirname "$0")
"$here/pipeline_gpu.sh" "$out" config/examples/throughput.yaml "$@"
python3 "$here/throughput.py" --table results/throughput | tee "$out/throughput.md"

#!/usr/bin/env bash
# The run behind docs/measurements/trust-h200.md on one GPU: the pipeline with
# config/examples/h200-trust.yaml (baseline, graphed and the A/A control arm), then the
# HolisticTraceAnalysis cross-check of its operator-pass traces; a tarball of the results
# (traces excluded) and both logs in OUT_DIR.
# Usage: benchmarks/trust_h200.sh OUT_DIR (on the GPU machine: source
# benchmarks/device_env.sh first). Stops at the first failure.
set -euo pipefail
usage="usage: benchmarks/trust_h200.sh OUT_DIR"
out=${1:?$usage}
mkdir -p "$out"
. "$(dirname "$0")/common.sh"
record_source "$out"
record_gpus "$out/gpu.csv" name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu
start=$(date +%s)
run_logged "$out/snakemake.log" 30 \
    snakemake --cores 16 --resources gpu=1 --configfile config/examples/h200-trust.yaml
echo "pipeline wall time: $(( $(date +%s) - start )) s"
run_logged "$out/hta.log" 40 \
    python3 benchmarks/hta_crosscheck.py results/h200-trust/ops/traces/*.json.gz \
    --json "$out/hta.json"
tar czf "$out/h200-trust.tgz" --exclude=traces results/h200-trust

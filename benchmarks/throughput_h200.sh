#!/usr/bin/env bash
# The run meant for docs/measurements/throughput-h200.md, on one GPU: benchmarks/throughput.py
# with the full preset at 256 output tokens per page: the best variant at batch 1, 8, 32 and
# 64 on 64 pages, the baseline (the released code path) at batch 1 and 8 on 8 of them, and
# the best batch again with 4 worker processes loading and preprocessing ahead; the cost per
# 1,000 pages at an assumed GPU-hour price (PRICE, default 3.50). A tarball of the records and
# throughput.json (pages and gate outputs excluded) and the log in OUT_DIR.
# Usage: benchmarks/throughput_h200.sh OUT_DIR [PRICE] (on the GPU machine: source
# benchmarks/device_env.sh first). Stops at the first failure.
set -euo pipefail
out=${1:?usage: benchmarks/throughput_h200.sh OUT_DIR [PRICE]}
price=${2:-3.50}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
. "$here/common.sh"
record_source "$out"
record_gpus "$out/gpu.csv" name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu
work="$out/work"
# Whatever finished is kept, also when the benchmark fails (the exit status stays its).
trap 'tar czf "$out/throughput.tgz" -C "$work" --exclude=pages --exclude="*.pt" .' EXIT
cd "$here"
run_logged "$out/throughput.log" 20 \
    python3 throughput.py "$work" --preset full --device cuda --dtype bfloat16 --tokens 256 \
    --pages 64 --batches 1,8,32,64 --baseline-pages 8 --baseline-batches 1,8 --workers 4 \
    --gpu-hour-price "$price"

#!/usr/bin/env bash
# DRAM bytes of one prefill and one decode step of one page, measured by Nsight Compute and
# set beside the bytes our MBU divides by (benchmarks/ncu_bytes.py says how each is counted).
# Usage: benchmarks/ncu_bytes.sh OUT_DIR
# Runs the timing command (vlmprof.runtime.timing_cli: full preset, one synthetic A4 page,
# max_new_tokens 2 so the decode range holds exactly one step) once per range under
#   ncu --clock-control none --nvtx --nvtx-include "vlmprof@<range>/"
#       --metrics dram__bytes_read.sum,dram__bytes_write.sum --csv --print-units base
# and prints the table: range, kernels, ncu read / write / read+write, ours, difference.
# Settings (environment): EXPERTS (grouped_mm: roughly 730 kernels a decode step and 2,300
# a prefill, counted as ATen calls on the CPU; eager, the baseline's loop over experts,
# about 1,600 and 13,000, too many for ncu in minutes), RANGES ("decode prefill sam clip
# projector": vision is their last three, LLM prefill is prefill minus vision),
# MAX_KERNELS (ncu's --launch-count per range, 3000), NCU_TIMEOUT (seconds per range, 200),
# PRESET (full), MODE (gundam).
# Needs the GPU, ncu, and vlmprof with its nvtx package importable (benchmarks/device_env.sh).
# Stops at the first failure, and with a one-line reason when ncu cannot read the counters.
set -euo pipefail
usage="usage: benchmarks/ncu_bytes.sh OUT_DIR"
out=${1:?$usage}
here=$(dirname "$0")
experts=${EXPERTS:-grouped_mm}
max_kernels=${MAX_KERNELS:-3000}
timeout_s=${NCU_TIMEOUT:-200}
read -r -a ranges <<< "${RANGES:-decode prefill sam clip projector}"
command -v ncu > /dev/null || { echo "ncu not found on PATH: Nsight Compute is needed" >&2; exit 1; }
python3 -c "import nvtx, vlmprof" 2> /dev/null || {
    echo "python3 cannot import nvtx and vlmprof: source benchmarks/device_env.sh first" >&2
    exit 1
}
mkdir -p "$out"
. "$here/common.sh"
record_source "$out"
record_gpus "$out/gpu.csv" name,driver_version,clocks.sm,clocks.mem,memory.total
python3 "$here/ncu_bytes.py" prepare "$out" --preset "${PRESET:-full}" --mode "${MODE:-gundam}" \
    --experts "$experts"
for range in "${ranges[@]}"; do
    mapfile -d '' -t timing < "$out/timing-$range.args"
    rm -f "$out/records-$range.jsonl" "$out/ncu-$range.csv"
    echo "ncu: range $range, up to $max_kernels kernels, at most $timeout_s s"
    start=$(date +%s)
    status=0
    LC_ALL=C timeout "$timeout_s" ncu --clock-control none --nvtx \
        --nvtx-include "vlmprof@$range/" \
        --metrics dram__bytes_read.sum,dram__bytes_write.sum \
        --csv --print-units base --launch-count "$max_kernels" \
        --log-file "$out/ncu-$range.csv" "${timing[@]}" > "$out/ncu-$range.log" 2>&1 \
        || status=$?
    echo "  took $(( $(date +%s) - start )) s"
    if (( status == 124 )); then
        echo "ncu ran past $timeout_s s on range $range; lower MAX_KERNELS or raise" \
            "NCU_TIMEOUT (log: $out/ncu-$range.log)" >&2
        exit "$status"
    fi
    python3 "$here/ncu_bytes.py" check "$out" "$range" || exit 1
    if (( status != 0 )); then
        tail -n 30 "$out/ncu-$range.log" >&2
        echo "ncu or the timing command failed (exit $status); log: $out/ncu-$range.log" >&2
        exit "$status"
    fi
done
python3 "$here/ncu_bytes.py" report "$out" --launch-count "$max_kernels" \
    --json "$out/ncu_bytes.json"

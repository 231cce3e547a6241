# Shared by the benchmark scripts (sourced, not run): record what a measurement ran on and
# run a long step with its whole log kept, failing the script when the step fails.

# record_source OUT_DIR: the commit, dirty flag and diff hash the measurement runs from.
record_source() {
    python3 -m vlmprof.provenance show > "$1/source.json"
}

# record_gpus FILE FIELDS: nvidia-smi's view of the GPUs; a machine without it records
# nothing and says so (the pipeline itself refuses a CUDA device it cannot see).
record_gpus() {
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu="$2" --format=csv | tee "$1"
    else
        echo "nvidia-smi not found: no GPU facts recorded in $1" >&2
    fi
}

# run_logged LOG LINES COMMAND...: run COMMAND with its output in LOG, then print the last
# LINES lines; on failure print more of the log and exit with the command's status.
run_logged() {
    local log=$1 lines=$2 status=0
    shift 2
    "$@" > "$log" 2>&1 || status=$?
    if (( status != 0 )); then
        tail -n 60 "$log" >&2
        echo "failed (exit $status): $*; whole log in $log" >&2
        exit "$status"
    fi
    tail -n "$lines" "$log"
}

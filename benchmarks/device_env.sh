# Sourced, from the repository root, at the start of a command on the GPU machine (which
# reaches no package index):
#     source benchmarks/device_env.sh
# Installs the wheels that benchmarks/device_kit.sh fetched (.whl/, sent with the tree) into
# /tmp/site; puts /tmp/site and src/ on PYTHONPATH and /tmp/site/bin on PATH; registers the
# python3 Jupyter kernel that papermill runs the report notebooks on, under
# JUPYTER_PATH=/tmp/site/share/jupyter; and exports the commit and dirty flag of the source
# (VLMPROF_SOURCE_COMMIT / _DIRTY / _DIFF_SHA256) read from the stamp the kit wrote
# (src/vlmprof/_source.json, sent with the tree: the copy there has no .git), so every
# measurement and its subprocesses record them. On a failure it says why and returns 1
# without touching the shell's options.

device_env_site=/tmp/site
if ! compgen -G ".whl/*.whl" > /dev/null; then
    echo "device_env: no wheels in $PWD/.whl; run benchmarks/device_kit.sh where pip" \
        "reaches an index and send .whl with the tree" >&2
    return 1
fi
if [[ ! -f src/vlmprof/_source.json ]]; then
    echo "device_env: no source stamp src/vlmprof/_source.json; benchmarks/device_kit.sh" \
        "writes it, send it with the tree" >&2
    return 1
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$device_env_site" .whl/*.whl || {
    echo "device_env: installing .whl/*.whl into $device_env_site failed" >&2
    return 1
}
export PYTHONPATH="$device_env_site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$device_env_site/bin:$PATH"
export JUPYTER_PATH="$device_env_site/share/jupyter"
python3 -m ipykernel install --prefix "$device_env_site" --name python3 > /dev/null || {
    echo "device_env: registering the python3 Jupyter kernel failed" >&2
    return 1
}
device_env_exports=$(python3 -c '
import shlex
from vlmprof.provenance import describe, source_state
state = source_state()
if state["git_commit"] is None:
    raise SystemExit(f"device_env: {describe(state)}")
names = {"git_commit": "COMMIT", "git_dirty": "DIRTY", "git_diff_sha256": "DIFF_SHA256"}
for key, name in names.items():
    value = state[key]
    if value is not None:
        value = {True: "1", False: "0"}.get(value, value)
        print(f"export VLMPROF_SOURCE_{name}={shlex.quote(str(value))}")
print(f"echo {shlex.quote(describe(state))} >&2")
') || return 1
eval "$device_env_exports"
unset device_env_site device_env_exports

#!/usr/bin/env bash
# Install SLURM (slurmctld, slurmd, client tools) and munge for the single-node test cluster.
# The tests start and stop their own daemons; this only installs packages. It fails where
# it cannot install (not root, no apt-get, no network): CI needs the SLURM tests to run.
set -euo pipefail

if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
    && command -v munged >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1; then
    echo "slurm-setup: SLURM already installed ($(slurmctld -V))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "slurm-setup: needs root and apt-get to install slurm-wlm and munge" >&2
    exit 1
fi

# Keep the packages' own services from starting: the tests run private daemons.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    trap 'rm -f "$policy"' EXIT
    chmod +x "$policy"
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists once per CI run: .ci/run says when it has just updated them.
if [ -z "${APT_LISTS_UPDATED:-}" ]; then
    apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
echo "slurm-setup: installed $(slurmctld -V)"

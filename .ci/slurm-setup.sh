#!/usr/bin/env bash
# Install SLURM (slurmctld, slurmd, client tools) and munge for the single-node test cluster.
# The tests start and stop their own daemons; this only installs packages. Where it cannot
# install (not root, no apt-get, no network) it says so and exits 0: the SLURM tests then skip.
set -uo pipefail

if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
    && command -v munged >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1; then
    echo "slurm-setup: SLURM already installed ($(slurmctld -V))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "slurm-setup: needs root and apt-get; SLURM tests will be skipped"
    exit 0
fi

# Keep the packages' own services from starting: the tests run private daemons.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
status=$?
if [ "$added_policy" -eq 1 ]; then
    rm -f "$policy"
fi
if [ "$status" -ne 0 ]; then
    echo "slurm-setup: apt-get could not install slurm-wlm; SLURM tests will be skipped"
    exit 0
fi
echo "slurm-setup: installed $(slurmctld -V)"

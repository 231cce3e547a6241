"""A real single-node SLURM on localhost for tests: munged, slurmctld and slurmd, as root.

The node is this machine (its CPUs and memory as `slurmd -C` reports them) and declares one
GPU generic resource with no device behind it, so `--gpus=1` requests are scheduled and
recorded as on a GPU cluster while the jobs themselves find no CUDA and run on the CPU.
There is no accounting database: job states come from `squeue` (finished jobs stay listed
for MinJobAge seconds). The configuration is written to /etc/slurm/slurm.conf, SLURM's
default place, because the executor's job step clears SLURM_CONF before it calls `srun`;
an existing configuration that these tests did not write is never touched.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

CONF_DIR = Path("/etc/slurm")
MARKER = "# Single-node test cluster written by vlmprof's tests; removed when they end."
COMMANDS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
# Finished jobs stay visible to squeue this long, the executor's status source here.
MIN_JOB_AGE_S = 900
# Memory kept back from SLURM for the daemons and the test process itself.
MEMORY_MARGIN_MB = 1024
HARDWARE_KEYS = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")


@dataclass(frozen=True)
class SlurmCluster:
    """A running test cluster: its one node's size and its state folder."""

    cpus: int
    mem_mb: int
    state_dir: Path


@dataclass(frozen=True)
class SlurmJob:
    """One job as the controller lists it."""

    job_id: str
    name: str
    comment: str
    tres_per_job: str
    state: str


def unavailable_reason() -> str | None:
    """Why a test cluster cannot start here (missing tools, not root, a foreign config)."""
    missing = [name for name in COMMANDS if shutil.which(name) is None]
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} not on PATH); "
            "run .ci/slurm-setup.sh as root to install slurm-wlm and munge"
        )
    if os.geteuid() != 0:
        return "the single-node SLURM test cluster runs its daemons as root"
    for name in ("slurm.conf", "gres.conf"):
        path = CONF_DIR / name
        if path.exists() and MARKER not in path.read_text():
            return f"{path} belongs to an existing SLURM setup; the test cluster leaves it alone"
    return None


def node_hardware() -> dict[str, int]:
    """This machine as slurmd sees it: CPUs, Boards, SocketsPerBoard, ..., RealMemory."""
    result = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
    fields = dict(item.split("=", 1) for item in result.stdout.split() if "=" in item)
    return {key: int(fields[key]) for key in (*HARDWARE_KEYS, "RealMemory")}


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports nothing listens on right now."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def slurm_conf(state_dir: Path, hardware: dict[str, int], mem_mb: int) -> str:
    """slurm.conf of one node on localhost with one device-less GPU resource."""
    node = " ".join(f"{key}={hardware[key]}" for key in HARDWARE_KEYS)
    ctld_port, slurmd_port = free_ports(2)
    return f"""{MARKER}
ClusterName=vlmproftest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={state_dir / "munge.socket"}
StateSaveLocation={state_dir / "ctld"}
SlurmdSpoolDir={state_dir / "spool"}
SlurmctldPidFile={state_dir / "slurmctld.pid"}
SlurmdPidFile={state_dir / "slurmd.pid"}
SlurmctldLogFile={state_dir / "slurmctld.log"}
SlurmdLogFile={state_dir / "slurmd.log"}
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge={MIN_JOB_AGE_S}
GresTypes=gpu
NodeName=localhost {node} RealMemory={mem_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def gres_conf() -> str:
    """gres.conf: the node's one GPU, a name without a device (File is required)."""
    return f"{MARKER}\nNodeName=localhost Name=gpu Count=1 File=/dev/null\n"


def _daemon(stack: ExitStack, log: Path, *command: str) -> subprocess.Popen:
    """Start `command` in the foreground of a child process, stopped when `stack` closes."""
    out = stack.enter_context(log.open("w"))
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    return process


def _wait_for(ready: Callable[[], bool], timeout_s: float = 30) -> None:
    """Poll `ready` until it holds or `timeout_s` passes (the caller then checks why)."""
    deadline = time.monotonic() + timeout_s
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.2)


def _wait_until_idle(state_dir: Path, daemons: list[subprocess.Popen], timeout_s: float) -> None:
    """Wait for the node to accept jobs; fail with the daemons' logs if it does not."""
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        if any(daemon.poll() is not None for daemon in daemons):
            break
        result = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%T"], capture_output=True, text=True
        )
        state = result.stdout.strip()
        if state == "idle":
            return
        if "drain" in state or "inval" in state:
            break
        time.sleep(0.5)
    logs = "\n".join(
        f"--- {path.name}\n{path.read_text()[-2000:]}" for path in sorted(state_dir.glob("*.out"))
    )
    raise RuntimeError(f"the test SLURM node did not become idle (state {state!r})\n{logs}")


@contextmanager
def running_cluster(state_dir: Path, timeout_s: float = 60) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd on localhost; stop them and remove the config after."""
    hardware = node_hardware()
    mem_mb = hardware["RealMemory"] - MEMORY_MARGIN_MB
    for sub in ("ctld", "spool"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    key = state_dir / "munge.key"
    subprocess.run(["mungekey", "--create", "--force", f"--keyfile={key}"], check=True)
    with ExitStack() as stack:
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("slurm.conf", slurm_conf(state_dir, hardware, mem_mb)),
            ("gres.conf", gres_conf()),
        ):
            (CONF_DIR / name).write_text(text)
            stack.callback((CONF_DIR / name).unlink, missing_ok=True)
        # --force: munged otherwise refuses a socket under a folder only root may enter.
        munged = _daemon(
            stack,
            state_dir / "munged.out",
            "munged",
            "--foreground",
            "--force",
            f"--socket={state_dir / 'munge.socket'}",
            f"--key-file={key}",
            f"--pid-file={state_dir / 'munged.pid'}",
            f"--seed-file={state_dir / 'munged.seed'}",
        )
        _wait_for(lambda: (state_dir / "munge.socket").exists() or munged.poll() is not None)
        slurmctld = _daemon(stack, state_dir / "slurmctld.out", "slurmctld", "-D")
        slurmd = _daemon(stack, state_dir / "slurmd.out", "slurmd", "-D", "-N", "localhost")
        stack.callback(cancel_all_jobs)
        _wait_until_idle(state_dir, [munged, slurmctld, slurmd], timeout_s)
        yield SlurmCluster(cpus=hardware["CPUs"], mem_mb=mem_mb, state_dir=state_dir)


def cancel_all_jobs() -> None:
    """Cancel whatever is still queued or running on the test cluster."""
    subprocess.run(["scancel", f"--user={getpass.getuser()}"], capture_output=True)


def cluster_jobs() -> list[SlurmJob]:
    """Every job the controller still knows, finished ones included."""
    fields = "JobID:|,Name:|,Comment:|,tres-per-job:|,State:"
    result = subprocess.run(
        ["squeue", "--states=all", "--noheader", f"--Format={fields}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [SlurmJob(*line.split("|")[:5]) for line in result.stdout.splitlines() if line]

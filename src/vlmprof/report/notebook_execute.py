"""Execute a notebook with papermill on a quiet kernel, its connection encrypted where it can.

A kernel started over local TCP without CurveZMQ keys logs a warning on every start (its
traffic is readable by other local users). Where pyzmq has CurveZMQ and jupyter_client can
provision keys, the kernel manager gives them to kernels that declare support, which both
protects the connection and removes the warning. The kernel's own log is limited to
critical records: at shutdown jupyter_client interrupts the kernel, which now and then logs
"KeyboardInterrupt caught in kernel" although nothing ran; cell output and errors reach the
notebook and papermill all the same. Used by the workflow's render step:
`python -m vlmprof.report.notebook_execute SOURCE OUTPUT --run-dir RUN_DIR`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import papermill
import zmq
from jupyter_client.manager import KernelManager
from traitlets.config import Config

# What jupyter_client says of a kernel that died on start, and how often one is started.
KERNEL_DIED = "Kernel died before replying to kernel_info"
KERNEL_STARTS = 3


def kernel_config() -> Config:
    """Kernel manager settings: CurveZMQ transport encryption for kernels that support it,
    when this pyzmq and jupyter_client can provide it (else none: plain local TCP)."""
    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption"):
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


def execute(source: Path, output: Path, run_dir: str) -> None:
    """Run `source` (.ipynb) in the current folder with parameter `run_dir`; the executed
    notebook goes to `output` (papermill writes it there even when a cell fails).

    A kernel that dies before it answers is started again, up to `KERNEL_STARTS` times:
    jupyter_client picks a kernel's TCP ports before binding them, so two notebooks
    rendered at once can pick the same port and one kernel dies on "Address already in use".
    """
    for start in range(1, KERNEL_STARTS + 1):
        try:
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters={"run_dir": run_dir},
                cwd=".",
                progress_bar=False,
                config=kernel_config(),
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
            return
        except RuntimeError as error:
            if KERNEL_DIED not in str(error) or start == KERNEL_STARTS:
                raise
            logging.getLogger(__name__).warning("kernel start %d failed (%s); again", start, error)


def main(argv: list[str] | None = None) -> None:
    """Command line: SOURCE OUTPUT --run-dir RUN_DIR; papermill's progress to stderr."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the notebook to run (.ipynb)")
    parser.add_argument("output", type=Path, help="where the executed notebook goes")
    parser.add_argument("--run-dir", required=True, help="the run folder the notebook reads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    execute(args.source, args.output, args.run_dir)


if __name__ == "__main__":
    main()

"""Logging set-up for workflow jobs: everything a job says goes to its Snakemake log file."""

from __future__ import annotations

import logging


def log_to_file(path: str) -> None:
    """Send INFO-and-above records of every logger to `path`, one timestamped line each."""
    logging.basicConfig(
        filename=path,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)

"""Jobs of the report step: the published folder and the report's figures as files."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from vlmprof.metrics.document import MetricsDocument
from vlmprof.report.notebook_figures import extract_figures
from vlmprof.report.publish import write_publish_folder

log = logging.getLogger(__name__)


def publish(
    pages: Sequence[str], markdown: Sequence[str], metrics: str, index: str, *, run_name: str
) -> None:
    """Collect the executed pages under publish/ with an index page."""
    write_publish_folder(
        run_name,
        [Path(page) for page in pages],
        [Path(page) for page in markdown],
        MetricsDocument.read(metrics),
        Path(index),
    )


def report_figures(ipynb: str, figures: str) -> None:
    """Write the engineering report's figures out as PNG files for `snakemake --report`."""
    written = extract_figures(Path(ipynb), Path(figures))
    log.info("%d figures: %s", len(written), [path.name for path in written])

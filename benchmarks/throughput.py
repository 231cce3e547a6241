"""Throughput through the pipeline: runs config/examples/throughput.yaml (every batch size,
workers and preprocessing arm of one gated run) and prints each setting's throughput,
memory and binding side from the run's variants/comparison.json.

Usage: python benchmarks/throughput.py [snakemake arguments...]
       (from the repository's root, e.g. --config subset='{n: 64}' max_new_tokens=64 to run
       fewer pages or tokens; --cores defaults to every core)
       python benchmarks/throughput.py --table RESULTS_DIR   (the table of a finished run)

Nothing is measured here: the numbers are the pipeline's, and `snakemake` with the same
config reproduces them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from vlmprof.report.formatting import format_number
from vlmprof.report.variants import binding_sentences, settings_table

CONFIG = "config/examples/throughput.yaml"


def table(results: Path) -> str:
    """The settings table and each setting's binding side, of a finished run's results."""
    comparison = json.loads((results / "variants" / "comparison.json").read_text())
    shown = settings_table(comparison).map(format_number).to_markdown(index=False)
    return "\n".join([shown, "", *(f"- {line}" for line in binding_sentences(comparison))])


def main(arguments: list[str]) -> int:
    """Run the pipeline on the throughput config with `arguments`, then print its table."""
    if arguments[:1] == ["--table"] and len(arguments) == 2:
        print(table(Path(arguments[1])))
        return 0
    cores = [] if "--cores" in arguments else ["--cores", str(os.cpu_count() or 1)]
    command = ["snakemake", *cores, "--resources", "gpu=1", "--configfile", CONFIG, *arguments]
    status = subprocess.run(command, check=False).returncode
    if status != 0:
        return status
    run_name = yaml.safe_load(Path(CONFIG).read_text())["run_name"]
    print(table(Path("results") / run_name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Nsight Systems timeline of one page's timing run, or a clear note when nsys is missing."""

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from vlmprof.atomic import write_text_atomic
from vlmprof.logs import log_to_file

smk = snakemake  # noqa: F821
log_to_file(smk.log[0])
log = logging.getLogger("nsight_systems")
out_dir = Path(smk.output.summary).parent
nsys = shutil.which("nsys")
if nsys is None:
    message = (
        "skipped: nsys (Nsight Systems) is not on PATH; install Nsight Systems and rerun "
        "`snakemake nsight_systems` to get an .nsys-rep timeline with the stage NVTX ranges"
    )
    log.warning(message)
    write_text_atomic(Path(smk.output.summary), message + "\n")
else:
    first = pd.read_csv(smk.input.subset).iloc[0]
    settings = {**json.loads(smk.params.settings), "shard": 0, "repeats": 1}
    command = [
        nsys,
        "profile",
        "--trace=cuda,nvtx,osrt",
        "--force-overwrite=true",
        "--output",
        str(out_dir / "timing"),
        sys.executable,
        "-m",
        "vlmprof.runtime.timing_cli",
        smk.params.spec,
        json.dumps(settings),
        str(out_dir / "records.jsonl"),
        f"{first['image_id']}={first['path']}",
    ]
    log.info("running %s", " ".join(command))
    subprocess.run(command, check=True)
    stats = subprocess.run(
        [nsys, "stats", "--report", "nvtx_sum", str(out_dir / "timing.nsys-rep")],
        check=True,
        capture_output=True,
        text=True,
    )
    write_text_atomic(Path(smk.output.summary), stats.stdout)

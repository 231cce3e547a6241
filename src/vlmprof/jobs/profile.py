"""Jobs of the profile step, each on a claimed GPU: the timing pass of a shard, the operator
pass, and an Nsight Systems timeline of one page."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from vlmprof.atomic import write_text_atomic
from vlmprof.data.subset import first_pages, page_texts, readable_pages, shard_pages
from vlmprof.flops.page_work import page_work
from vlmprof.models.base import ModelAdapter, ModelInputs, ModelSpec
from vlmprof.profiler.operator_profile import run_operator_profile
from vlmprof.runtime.launcher import launched_model
from vlmprof.runtime.output_length import OutputLength
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.profile_shard import profile_images
from vlmprof.runtime.timing_cli import timing_command
from vlmprof.variants.gate import merged_outputs

log = logging.getLogger(__name__)

NSYS_MISSING = (
    "skipped: nsys (Nsight Systems) is not on PATH; install Nsight Systems and rerun "
    "`snakemake nsight_systems` to get an .nsys-rep timeline with the stage NVTX ranges"
)


def profile_shard(
    subset: str,
    records: str,
    outputs: str,
    shard: int,
    progress_label: str,
    against: str | None = None,
    *,
    spec: str,
    settings: str,
    shards: int,
) -> None:
    """Timing pass of one shard: each of its pages (of the subset's first `pages`, where
    the arm's settings set it) x repeats, one run record (JSON line) each, and each page's
    reference outputs for the correctness gate (fed the tokens of the baseline's outputs
    `against`, for an arm the gate judges)."""
    table = pd.read_csv(subset)
    mine = first_pages(table, json.loads(settings).get("pages"))
    pages = [page for page in shard_pages(table, shard, shards) if page[0] in mine]
    model = ModelSpec(**json.loads(spec))
    baseline = None if against is None else merged_outputs([against])
    with launched_model(model) as (adapter, placement):
        run = ProfileSettings(**json.loads(settings), shard=shard, eos_id=adapter.eos_token_id)
        texts = page_texts(table) if run.output_length.kind == "dataset" else None
        ids = [image_id for image_id, _ in pages]
        lengths = run.output_length.page_lengths(ids, run.max_new_tokens, texts, adapter)
        where = placement.device
        log.info("shard %d: %d pages on %s; lengths %s", shard, len(pages), where, lengths.source)
        profile_images(
            adapter,
            placement,
            pages,
            run,
            Path(records),
            Path(outputs),
            progress_label=progress_label,
            page_facts=counted_work,
            against=baseline,
            lengths=lengths,
        )


def counted_work(adapter: ModelAdapter, inputs: ModelInputs) -> dict[str, object]:
    """A page's work counted over an untimed run of it: the FLOPs and bytes of a model no
    formula gives, and for every model the bytes as implemented (every op's traffic)."""
    return {"counted_work": page_work(adapter, inputs)}


def operator_profile(
    subset: str,
    operators: str,
    *,
    spec: str,
    images: int,
    top_n: int,
    max_new_tokens: int,
    warmup_rounds: int,
    max_pixels: int,
    progress_label: str,
) -> None:
    """Operator pass: torch.profiler over the subset's first `images` readable pages; its
    traces and tables are written beside `operators` (the operator table)."""
    pages = readable_pages(pd.read_csv(subset), images, max_pixels)
    with launched_model(ModelSpec(**json.loads(spec))) as (adapter, _placement):
        run_operator_profile(
            adapter,
            pages,
            max_new_tokens=max_new_tokens,
            warmup_rounds=warmup_rounds,
            out_dir=Path(operators).parent,
            top_n=top_n,
            progress_label=progress_label,
        )


def nsys_profile_command(nsys: str, report: Path, command: list[str]) -> list[str]:
    """`command` run under Nsight Systems, tracing CUDA, NVTX and OS runtime calls into
    `report`.nsys-rep (replaced if present)."""
    trace = ["profile", "--trace=cuda,nvtx,osrt", "--force-overwrite=true"]
    return [nsys, *trace, "--output", str(report), *command]


def nsys_stats_command(nsys: str, report: Path) -> list[str]:
    """The NVTX range summary of `report`.nsys-rep (time per stage range)."""
    return [nsys, "stats", "--report", "nvtx_sum", f"{report}.nsys-rep"]


def nsight_systems(subset: str, summary: str, *, spec: str, settings: str) -> None:
    """Nsight Systems timeline of one timing run of the subset's first page, and its NVTX
    summary; without nsys, a summary saying why it was skipped."""
    nsys = shutil.which("nsys")
    if nsys is None:
        log.warning(NSYS_MISSING)
        write_text_atomic(Path(summary), NSYS_MISSING + "\n")
        return
    out_dir = Path(summary).parent
    one_run = {**json.loads(settings), "shard": 0, "repeats": 1}
    if OutputLength(**one_run.get("output_length", {})).kind == "dataset":
        # The command names its page by path only; the timeline's NVTX ranges need no text.
        log.info("the timeline's page generates max_new_tokens (its text is not passed on)")
        one_run["output_length"] = OutputLength().params()
    page = shard_pages(pd.read_csv(subset), 0, 1)[:1]
    timing = timing_command(spec, json.dumps(one_run), out_dir / "records.jsonl", page)
    command = nsys_profile_command(nsys, out_dir / "timing", timing)
    log.info("running %s", " ".join(command))
    subprocess.run(command, check=True)
    stats = nsys_stats_command(nsys, out_dir / "timing")
    done = subprocess.run(stats, check=True, capture_output=True, text=True)
    write_text_atomic(Path(summary), done.stdout)

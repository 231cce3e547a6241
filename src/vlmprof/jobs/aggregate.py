"""Jobs of the aggregate step: a run's metrics and tables, every variant against the
baseline, the compared models by cost per page, and this run against another. Torch-free:
they read what the runs wrote."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from vlmprof.atomic import atomic_open, write_json_atomic, write_text_atomic
from vlmprof.compare import compare_dirs, to_markdown, workflow_refusal
from vlmprof.device_choice import resolved_dtype_name
from vlmprof.metrics.build import build_metrics, write_metrics
from vlmprof.metrics.document import MetricsDocument
from vlmprof.metrics.environment import collect_environment
from vlmprof.metrics.peaks import resolve_peaks
from vlmprof.models import has_formulas, spec_dims
from vlmprof.models.base import ModelSpec
from vlmprof.records import first_placement
from vlmprof.report.models import models_table
from vlmprof.report.models import to_markdown as models_markdown
from vlmprof.report.variants import to_markdown as comparison_markdown
from vlmprof.runtime.profile_settings import RELEASED_SHAPE, run_shape
from vlmprof.variants.best_path import BEST
from vlmprof.variants.comparison import compare_variants as compare_all
from vlmprof.variants.comparison import read_gate, read_run, write_comparison
from vlmprof.variants.models_comparison import ModelPath
from vlmprof.variants.models_comparison import compare_models as model_comparison
from vlmprof.variants.switches import BASELINE

log = logging.getLogger(__name__)


def aggregate(
    records: Sequence[str],
    subset: str,
    static: str,
    calibration: str,
    timeline: str | None,
    metrics: str,
    stage_ms: str,
    *,
    spec: str,
    settings: str,
    config: str,
    peak_tflops: float | None,
    peak_bandwidth_tbps: float | None,
    context_len_mode: str,
    context_len_fixed: int | None,
    tolerance: float,
    device_requested: str,
) -> None:
    """metrics.json and the tables (written beside `stage_ms`) of an arm's records, against
    its static FLOPs and the device's peaks (the datasheet's, or calibrated ones). The
    device, dtype and GPU are those the records say the first shard ran on; the config
    resolved to the arm's model `spec` and the shape of its run `settings` (batch size,
    workers, preprocessing where not the released flow's)."""
    model = ModelSpec(**json.loads(spec))
    resolved = json.loads(spec) | run_shape(json.loads(settings))
    dims = None  # a model without formulas: its records carry their counted work
    if has_formulas(model.name):
        dims = spec_dims(model.name, model.preset, model.overrides, model.checkpoint)
    placement = first_placement(records)
    if placement is not None:
        dtype = placement.dtype
    else:
        dtype = resolved_dtype_name(model.dtype, model.device)
    environment = collect_environment(placement, device_requested)
    calibrated = json.loads(Path(calibration).read_text())
    peaks = resolve_peaks(
        environment.get("device_name"),
        dtype,
        peak_tflops,
        peak_bandwidth_tbps,
        calibrated if calibrated.get("enabled") else None,
    )
    built, tables = build_metrics(
        record_paths=list(records),
        static_compute=json.loads(Path(static).read_text()),
        dims=dims,
        dtype=dtype,
        peaks=peaks,
        environment=environment,
        inputs=pd.read_csv(subset),
        config={**json.loads(config), "resolved": resolved},
        context_len_mode=context_len_mode,
        context_len_fixed=context_len_fixed,
        tolerance=tolerance,
        timeline=None if timeline is None else json.loads(Path(timeline).read_text()),
        workers=resolved.get("workers", RELEASED_SHAPE["workers"]),
    )
    write_metrics(built, tables, Path(metrics), Path(stage_ms).parent)


def compare_variants(
    baseline: str,
    metrics: Sequence[str],
    gates: Sequence[str],
    json_out: str,
    csv_out: str,
    md_out: str,
    *,
    names: Sequence[str],
    switches: str,
    control: str | None = None,
) -> None:
    """Every variant (named in `names`, with its metrics.json and gate.json in the same
    order) against the baseline: comparison.json, comparison.csv and comparison.md. The
    one named `control`, if any, is the A/A control every verdict must clear."""
    if not len(names) == len(metrics) == len(gates):
        raise ValueError(
            f"{len(names)} variant names, {len(metrics)} metrics.json and {len(gates)} gate.json:"
            " each variant needs one of each, in the order of the names"
        )
    by_name = json.loads(switches)
    base = read_run(BASELINE, baseline)
    variants = [
        read_run(name, path, gate, by_name.get(name, {}))
        for name, path, gate in zip(names, metrics, gates, strict=True)
    ]
    arm = next((run for run in variants if run.name == control), None)
    if control is not None and arm is None:
        raise ValueError(f"control {control!r}: not among the variant names {list(names)}")
    variants = [run for run in variants if run is not arm]
    comparison = compare_all(base, variants, arm)
    write_comparison(comparison, json_out, csv_out)
    write_text_atomic(Path(md_out), comparison_markdown(comparison))
    log.info(
        "%d variants against the baseline; best per stage: %s", len(variants), comparison["best"]
    )


def compare_models(
    metrics: Sequence[str],
    gates: Sequence[str],
    json_out: str,
    csv_out: str,
    md_out: str,
    *,
    arms: str,
) -> None:
    """The compared models by cost per page: comparison.json, .csv and .md. `arms` (JSON)
    names each model's path in the order of `metrics` (the run's own model first), as
    {arm, name, path, switches}; each best path's gate.json is in `gates`, in the same
    order."""
    paths = json.loads(arms)
    best = [arm for arm in paths if arm["path"] == BEST]
    if len(paths) != len(metrics) or len(best) != len(gates):
        raise ValueError(
            f"{len(paths)} model paths, {len(metrics)} metrics.json and {len(gates)} gate.json:"
            " each path needs its metrics.json and each best path its gate.json, in order"
        )
    verdicts = {
        arm["arm"]: read_gate(path, arm["arm"]) for arm, path in zip(best, gates, strict=True)
    }
    compared = [
        ModelPath(
            arm["name"],
            arm["path"],
            MetricsDocument.read(path),
            arm["switches"],
            verdicts.get(arm["arm"]),
        )
        for arm, path in zip(paths, metrics, strict=True)
    ]
    comparison = model_comparison(compared)
    table = models_table(comparison)
    write_json_atomic(Path(json_out), comparison)
    with atomic_open(Path(csv_out)) as handle:
        table.to_csv(handle)
    write_text_atomic(Path(md_out), models_markdown(comparison, table))
    log.info("%d model paths by cost per page; cheapest: %s", len(paths), comparison["cheapest"])


def compare(
    run: str,
    baseline: str,
    table: str,
    *,
    tolerance: float,
    force: bool,
    include_host_stages: bool,
) -> int:
    """Per-stage deltas of this run's metrics.json against a baseline run's, with a verdict,
    written to `table`; the job's exit status, 0. Host-only stages are judged only with
    `include_host_stages`.

    Runs of other pages, config or device (unless `force`) and an unreadable metrics.json
    are refused with status 2, as vlmprof-compare does: the reason in one line, logged and
    on stderr, and `table` not written.
    """
    try:
        refused = None if force else workflow_refusal(baseline, run)
        if refused is None:
            comparison = compare_dirs(
                baseline, run, tolerance, force=force, include_host_stages=include_host_stages
            )
    except (OSError, ValueError) as error:
        refused = str(error)
    if refused is not None:
        log.error("%s", refused)
        print(f"error: {refused}", file=sys.stderr)
        return 2
    write_text_atomic(Path(table), to_markdown(comparison, tolerance))
    return 0

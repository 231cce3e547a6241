"""The utilisation sections: the peaks, MFU and MBU per stage, the decode step against
bandwidth and each stage on the roofline, as aggregation wrote them."""

from __future__ import annotations

import pandas as pd

from vlmprof.metrics.document import MetricsDocument
from vlmprof.metrics.roofline import PEAK_COLUMNS
from vlmprof.report.formatting import MISSING, display_name
from vlmprof.stages import VISION_PARTS

# The roofline table's stages: the parts of vision, vision, its two halves of prefill, decode.
ROOFLINE_STAGES: tuple[str, ...] = (*VISION_PARTS, "vision", "llm_prefill", "prefill", "decode")
WHOLE_MODEL = "whole model"
# tables/mbu.csv's per-run byte columns and how the report labels them.
BYTE_COLUMNS = {
    "bytes_necessary_per_run": "necessary",
    "bytes_as_implemented_per_run": "as implemented",
}


def peaks_table(metrics: MetricsDocument) -> pd.DataFrame:
    """The two denominators of MFU and MBU, each with where it came from (or why absent)."""
    return pd.DataFrame(
        [
            {
                "peak": column,
                "compute (TFLOP/s)": entry.tflops,
                "bandwidth (TB/s)": entry.tbps,
                "source": entry.label or entry.reason or MISSING,
            }
            for column, entry in metrics.peaks.by_column().items()
        ]
    )


def missing_peak_reasons(metrics: MetricsDocument) -> dict[str, str]:
    """Why the datasheet or calibrated peak is absent, for each that is."""
    return {
        column: entry.reason or "unknown"
        for column, entry in metrics.peaks.by_column().items()
        if entry.tflops is None or entry.tbps is None
    }


def utilisation_table(mfu: pd.DataFrame, mbu: pd.DataFrame) -> pd.DataFrame:
    """Per stage MFU and MBU (%) against the datasheet and calibrated peaks, achieved rates
    and the work per run, both byte figures labelled: the necessary bytes MBU divides by and
    the bytes as implemented (from tables/mfu.csv and tables/mbu.csv)."""
    table = pd.DataFrame(index=mfu.index)
    table["MFU datasheet (%)"] = 100.0 * mfu["datasheet"]
    table["MFU calibrated (%)"] = 100.0 * mfu["calibrated"]
    table["achieved (GFLOP/s)"] = 1000.0 * mfu["achieved (TFLOP/s)"]
    table["GFLOP per page"] = mfu["flops_per_run"] / 1e9
    table["MBU datasheet (%)"] = 100.0 * mbu["datasheet"].reindex(table.index)
    table["MBU calibrated (%)"] = 100.0 * mbu["calibrated"].reindex(table.index)
    table["achieved (GB/s)"] = 1000.0 * mbu["achieved (TB/s)"].reindex(table.index)
    for column, label in BYTE_COLUMNS.items():
        table[f"GB per page, {label}"] = mbu[column].reindex(table.index) / 1e9
    table.index = [WHOLE_MODEL if s == "model" else display_name(s) for s in table.index]
    table.index.name = "stage"
    return table


def decode_roofline_table(metrics: MetricsDocument) -> pd.DataFrame:
    """Bytes one decode step moves (necessary, and as implemented) and the step time each
    peak bandwidth would allow the necessary bytes."""
    roof = metrics.mbu.decode_roofline
    if roof is None or roof.bytes_necessary_per_token is None:
        return pd.DataFrame(columns=["quantity", "value"])
    rows = [
        ("MB per decode step, necessary", roof.bytes_necessary_per_token / 1e6),
        ("MB per decode step, as implemented", _scaled(roof.bytes_as_implemented_per_token, 1e-6)),
        ("measured time per step (ms)", roof.ms_per_token_measured),
        ("step time at datasheet bandwidth (ms)", roof.ms_per_token_at_datasheet_bw),
        ("step time at calibrated bandwidth (ms)", roof.ms_per_token_at_calibrated_bw),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def roofline_points(metrics: MetricsDocument) -> pd.DataFrame:
    """Each stage on the roofline (metrics.json's `roofline`): work per page (both byte
    figures), arithmetic intensity (FLOP per necessary byte), achieved rate, and per peak with
    both a compute and a bandwidth figure its roof (the attainable GFLOP/s at that intensity)
    and the share of it reached; "bound by" names the roof that limits the stage at the
    calibrated peak."""
    if metrics.roofline is None:
        raise KeyError("metrics.json: no roofline section; rerun the run's aggregate step")
    per_stage = metrics.roofline.per_stage
    stages = [s for s in ROOFLINE_STAGES if s in per_stage]
    entries = [per_stage[s] for s in stages]
    table = pd.DataFrame(
        {
            "GFLOP per page": [e.flops_per_run / 1e9 for e in entries],
            "MB per page, necessary": [_scaled(e.bytes_necessary_per_run, 1e-6) for e in entries],
            "MB per page, as implemented": [
                _scaled(e.bytes_as_implemented_per_run, 1e-6) for e in entries
            ],
            "intensity (FLOP/byte)": [e.intensity_necessary for e in entries],
            "achieved (GFLOP/s)": [e.achieved_tflops * 1e3 for e in entries],
        },
        index=pd.Index([display_name(s) for s in stages], name="stage"),
    )
    peaks = metrics.peaks.by_column()
    for column in PEAK_COLUMNS:
        if peaks[column].tflops and peaks[column].tbps:
            at_peak = [e.at(column) for e in entries]
            table[f"{column} roof (GFLOP/s)"] = [
                None if p is None else _scaled(p.attainable_tflops, 1e3) for p in at_peak
            ]
            table[f"of {column} roof (%)"] = [
                None if p is None else _reciprocal_percent(p.distance) for p in at_peak
            ]
    calibrated = peaks["calibrated"]
    if calibrated.tflops and calibrated.tbps:
        table["bound by (calibrated)"] = [
            None if e.calibrated is None else e.calibrated.bound for e in entries
        ]
    return table


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _reciprocal_percent(distance: float | None) -> float | None:
    """The share (%) of its roof a stage reaches, from its distance to it."""
    return None if not distance else 100.0 / distance

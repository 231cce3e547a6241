"""The `telemetry` section of metrics.json: energy per stage, per page and per token.

Built from the `telemetry` field of the run records (vlmprof.runtime.telemetry); when no
record has it, the section says why (CPU run, no NVML, switched off) and holds no numbers.
"""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from vlmprof.metrics.document import Telemetry
from vlmprof.metrics.stats import summarize
from vlmprof.runtime.telemetry import STAGES, flag_runs

JOULES_PER_KWH = 3.6e6


def _pick(telemetry: list[dict[str, Any]], key: str, choose: Any) -> float | None:
    """`choose` (min or max) of a key over the runs that have a value for it."""
    values = [t[key] for t in telemetry if t.get(key) is not None]
    return choose(values) if values else None


def _absent_reason(config: dict[str, Any], environment: dict[str, Any]) -> str:
    """Why no record carries telemetry, in words a reader can act on."""
    if not config.get("telemetry", {}).get("enabled", True):
        return "switched off (telemetry.enabled: false)"
    nvml = environment.get("nvml")
    if nvml and nvml != "ok":
        return f"NVML {nvml}"
    return "no run record carries telemetry; the profile_shard log says why"


def _timeline(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The sample series of the first record that kept one, with whose run it is."""
    for record in records:
        series = (record.get("telemetry") or {}).get("series")
        if series:
            keys = ("image_id", "repeat", "shard", "prefill_ms", "decode_ms")
            return {key: record.get(key) for key in keys} | series
    return None


def _mean_power_w(telemetry: list[dict[str, Any]]) -> float | None:
    """Power over every run: their energy over their time, total over total (a run's time
    is its energy over its mean power); None where no run has both."""
    runs = [
        (t["energy_j"]["run"], t["mean_power_w"])
        for t in telemetry
        if t["energy_j"].get("run") is not None and t.get("mean_power_w")
    ]
    seconds = sum(joules / watts for joules, watts in runs)
    return sum(joules for joules, _ in runs) / seconds if seconds > 0 else None


def telemetry_section(
    records: list[dict[str, Any]], config: dict[str, Any], environment: dict[str, Any]
) -> dict[str, Any]:
    """Energy per stage (J), joules per page and per output token, power, clocks, flagged
    runs, sampler overhead, cost per page when `telemetry.energy_price_per_kwh` is set, and
    one run's timeline; or {available: False, reason} without telemetry."""
    settings = config.get("telemetry", {})
    measured = [r for r in records if r.get("status") == "ok" and r.get("telemetry")]
    if not measured:
        return {"available": False, "reason": _absent_reason(config, environment)}
    telemetry = [r["telemetry"] for r in measured]
    energy = {stage: summarize(t["energy_j"].get(stage) for t in telemetry) for stage in STAGES}
    run_j = [(t["energy_j"]["run"], r["tokens"]) for t, r in zip(telemetry, measured, strict=True)]
    run_j = [(joules, tokens) for joules, tokens in run_j if joules is not None and tokens]
    per_page = statistics.fmean(j for j, _ in run_j) if run_j else None
    per_token = sum(j for j, _ in run_j) / sum(n for _, n in run_j) if run_j else None
    price = settings.get("energy_price_per_kwh")
    fraction = settings.get("clock_drop_fraction", 0.05)
    readings = [t["overhead"]["read_mean_ms"] for t in telemetry if t["overhead"]["read_mean_ms"]]
    section = {
        "available": True,
        "reason": None,
        "runs": len(measured),
        "energy_j": energy,
        "joules_per_page": per_page,
        "joules_per_output_token": per_token,
        "mean_power_w": _mean_power_w(telemetry),
        "peak_power_w": _pick(telemetry, "peak_power_w", max),
        "sm_clock_min_mhz": _pick(telemetry, "sm_clock_min_mhz", min),
        "sm_clock_max_mhz": _pick(telemetry, "sm_clock_max_mhz", max),
        "peak_temperature_c": _pick(telemetry, "peak_temperature_c", max),
        "throttle_reasons_seen": sorted({n for t in telemetry for n in t["throttle_reasons"]}),
        "clock_drop_fraction": fraction,
        "flagged_runs": flag_runs(measured, fraction),
        "sampler_read_mean_ms": statistics.fmean(readings) if readings else None,
        "energy_price_per_kwh": price,
        "cost_per_page": per_page / JOULES_PER_KWH * price
        if price is not None and per_page is not None
        else None,
        "timeline": _timeline(measured),
    }
    return section


def energy_table(section: Telemetry) -> pd.DataFrame:
    """Stage x energy (J): mean, std, min, max over runs, and the share of the run's energy."""
    columns = ["mean (J)", "std (J)", "min (J)", "max (J)", "runs", "share of run (%)"]
    if not section.available:
        return pd.DataFrame(columns=["stage", *columns]).set_index("stage")
    run = section.energy_j.get("run")
    run_mean = None if run is None else run.mean
    rows = []
    for stage in STAGES:
        stats = section.energy_j.get(stage)
        if stats is None or not stats.n:
            continue
        share = 100.0 * stats.mean / run_mean if run_mean else None
        values = [stats.mean, stats.std, stats.min, stats.max, stats.n, share]
        rows.append({"stage": stage, **dict(zip(columns, values, strict=True))})
    return pd.DataFrame(rows, columns=["stage", *columns]).set_index("stage")


def flagged_table(section: Telemetry) -> pd.DataFrame:
    """One row per run flagged by the clock or throttle guard (empty without telemetry)."""
    rows = [
        {
            "image_id": run.image_id,
            "repeat": run.repeat,
            "shard": run.shard,
            "why": "; ".join(run.reasons),
        }
        for run in section.flagged_runs
    ]
    return pd.DataFrame(rows, columns=["image_id", "repeat", "shard", "why"])


def energy_sentence(section: Telemetry) -> str:
    """One plain sentence on energy per page and token (and cost), or why it is unknown."""
    if not section.available:
        return f"GPU telemetry unavailable on this machine: {section.reason}."
    per_page, per_token = section.joules_per_page, section.joules_per_output_token
    sentence = f"The GPU used {per_page:.3g} J per page ({per_token:.3g} J per output token)"
    if section.cost_per_page is not None:
        price = section.energy_price_per_kwh
        sentence += f", {section.cost_per_page:.3g} per page at {price:g} per kWh"
    flagged = len(section.flagged_runs)
    if flagged:
        sentence += f"; {flagged} of {section.runs} runs had sagging clocks or throttling"
    return sentence + "."

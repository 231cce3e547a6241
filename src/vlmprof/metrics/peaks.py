"""Hardware peaks for MFU and MBU: a datasheet table, user overrides and calibrated values.

MFU is reported against two denominators side by side: the reference peak (the datasheet
value, or a user override that replaces it and says so) and a peak calibrated on the machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PEAK_TFLOPS = "MFU_PEAK_TFLOPS"
ENV_PEAK_TBPS = "MBU_PEAK_TBPS"

# Which datasheet column a torch dtype runs on (half types use the dense tensor-core peak).
_DTYPE_COLUMN: dict[str, str] = {
    "bfloat16": "half",
    "bf16": "half",
    "float16": "half",
    "fp16": "half",
    "half": "half",
    "float32": "fp32",
    "fp32": "fp32",
    "float": "fp32",
}

_COLUMN_LABELS = {"half": "bf16/fp16 tensor", "fp32": "fp32"}


@dataclass(frozen=True)
class DatasheetPeak:
    """Dense (no sparsity) peaks of one GPU from its public datasheet."""

    name: str
    pattern: str  # regular expression matched against the lower-cased device name
    half_tflops: float  # bf16/fp16 tensor core
    fp32_tflops: float
    tbps: float  # memory bandwidth, TB/s


# Order matters: the first pattern that matches wins, so specific variants come first.
# NVL, GH200 and GB200 parts have other peaks and deliberately match nothing (\b keeps
# "gh200" from matching "h200").
DATASHEET: tuple[DatasheetPeak, ...] = (
    DatasheetPeak("H100 PCIe 80GB", r"\bh100\b.*\bpcie\b", 756.0, 51.0, 2.0),
    DatasheetPeak("H100 SXM5 80GB", r"\bh100\b(?!.*\bnvl\b)", 989.0, 67.0, 3.35),
    DatasheetPeak("H200 SXM 141GB", r"\bh200\b(?!.*\bnvl\b)", 989.0, 67.0, 4.8),
    DatasheetPeak("A100 SXM 80GB", r"\ba100\b.*\bsxm\w*.*80\s*gb", 312.0, 19.5, 2.04),
    DatasheetPeak("A100 40GB", r"\ba100\b.*40\s*gb", 312.0, 19.5, 1.56),
    DatasheetPeak("L40S", r"\bl40s\b", 362.0, 91.6, 0.864),
    DatasheetPeak("RTX 4090", r"\brtx 4090\b(?! d\b)", 165.0, 82.6, 1.01),
    DatasheetPeak("B200", r"\bb200\b", 2250.0, 80.0, 8.0),
)


def dtype_column(dtype: str) -> str:
    """The datasheet column ("half" or "fp32") for a dtype name, or a ValueError."""
    key = dtype.lower().removeprefix("torch.")
    if key not in _DTYPE_COLUMN:
        raise ValueError(f"dtype: unknown dtype {dtype!r}; allowed: {', '.join(_DTYPE_COLUMN)}")
    return _DTYPE_COLUMN[key]


def match_datasheet(device_name: str | None) -> DatasheetPeak | None:
    """The datasheet entry whose pattern matches an NVML/torch device name, if any."""
    if not device_name:
        return None
    name = device_name.lower()
    return next((peak for peak in DATASHEET if re.search(peak.pattern, name)), None)


def datasheet_peaks(device_name: str | None, dtype: str) -> dict[str, Any]:
    """Datasheet TFLOP/s and TB/s for a device and dtype; None with a reason when unknown."""
    column = dtype_column(dtype)
    if not device_name or device_name.lower() == "cpu":
        return {"tflops": None, "tbps": None, "source": None, "reason": "no datasheet for CPUs"}
    entry = match_datasheet(device_name)
    if entry is None:
        return {
            "tflops": None,
            "tbps": None,
            "source": None,
            "reason": f"{device_name!r} is not in the datasheet table; set peak_tflops "
            f"and peak_bandwidth_tbps in the config or {ENV_PEAK_TFLOPS}",
        }
    tflops = entry.half_tflops if column == "half" else entry.fp32_tflops
    return {
        "tflops": tflops,
        "tbps": entry.tbps,
        "source": f"datasheet: {entry.name}, {_COLUMN_LABELS[column]} dense",
        "reason": None,
    }


def _env_float(env: Mapping[str, str], name: str) -> float | None:
    """A positive float from environment variable `name`, None when unset or empty."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: {raw!r} is not a number; set it to TFLOP/s or TB/s") from None
    if value <= 0:
        raise ValueError(f"{name}: must be positive, got {value}")
    return value


def _override(
    peak_tflops: float | None, peak_bandwidth_tbps: float | None, env: Mapping[str, str]
) -> dict[str, Any] | None:
    """User-given peaks: config values beat environment variables; None when neither is set."""
    sources = []
    tflops, tbps = peak_tflops, peak_bandwidth_tbps
    if tflops is not None:
        sources.append("config peak_tflops")
    elif (tflops := _env_float(env, ENV_PEAK_TFLOPS)) is not None:
        sources.append(f"env {ENV_PEAK_TFLOPS}")
    if tbps is not None:
        sources.append("config peak_bandwidth_tbps")
    elif (tbps := _env_float(env, ENV_PEAK_TBPS)) is not None:
        sources.append(f"env {ENV_PEAK_TBPS}")
    if not sources:
        return None
    return {"tflops": tflops, "tbps": tbps, "source": ", ".join(sources)}


def _reference(datasheet: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """The first MFU/MBU denominator: the override where given, else the datasheet."""
    reference: dict[str, Any] = {}
    for key in ("tflops", "tbps"):
        if override is not None and override[key] is not None:
            reference[key] = override[key]
        else:
            reference[key] = datasheet[key]
    labels = []
    if override is not None:
        labels.append(f"override ({override['source']})")
    if datasheet["source"] is not None and (
        override is None or None in (override["tflops"], override["tbps"])
    ):
        labels.append(datasheet["source"])
    reference["label"] = "; ".join(labels) if labels else None
    reference["reason"] = datasheet["reason"] if None in reference.values() else None
    return reference


def age_words(seconds: float) -> str:
    """A duration as a reader says it: seconds, minutes, hours or days."""
    for limit, unit, size in ((90, "s", 1), (90 * 60, "min", 60), (48 * 3600, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}" if unit != "h" else f"{seconds / size:.1f} h"
    return f"{seconds / 86400:.1f} days"


def calibration_origin(calibrated: Mapping[str, Any]) -> str:
    """How calibrated peaks were obtained: measured in this run, or cached (with their age)."""
    source = calibrated.get("source")
    if source == "cached":
        return f"cached (age {age_words(calibrated['age_s'])})"
    return "measured" if source == "measured" else "measured or cached (not recorded)"


def resolve_peaks(
    device_name: str | None,
    dtype: str,
    peak_tflops: float | None = None,
    peak_bandwidth_tbps: float | None = None,
    calibrated: dict[str, Any] | None = None,
    env: Mapping[str, str] = os.environ,
) -> dict[str, Any]:
    """Every peak the metrics divide by, each labelled with where it came from.

    `datasheet` is the table value (None with a reason on CPUs and unknown GPUs);
    `override` appears when the config or MFU_PEAK_TFLOPS/MBU_PEAK_TBPS give a peak;
    `reference` is what the "datasheet" MFU column uses (override replacing datasheet);
    `calibrated` comes from `calibrate_peaks` (None values with a reason when absent); its
    label says whether it was measured for this run or cached, and how long ago.
    """
    datasheet = datasheet_peaks(device_name, dtype)
    override = _override(peak_tflops, peak_bandwidth_tbps, env)
    if calibrated is None:
        calibrated_part: dict[str, Any] = {
            "tflops": None,
            "tbps": None,
            "method": None,
            "origin": None,
            "label": None,
            "reason": "calibration not run",
        }
    else:
        origin = calibration_origin(calibrated)
        calibrated_part = {
            "tflops": calibrated["tflops"],
            "tbps": calibrated["tbps"],
            "method": calibrated["method"],
            "origin": origin,
            "label": f"{origin}; {calibrated['method']}",
            "reason": None,
        }
    peaks: dict[str, Any] = {
        "device_name": device_name,
        "dtype": dtype,
        "datasheet": datasheet,
        "calibrated": calibrated_part,
        "reference": _reference(datasheet, override),
    }
    if override is not None:
        peaks["override"] = override
    return peaks

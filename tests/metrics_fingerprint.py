"""What of a run's metrics.json must survive a restructuring: its key paths, and the
FLOPs, parameters, bytes and record counts, which depend on the seed and shapes only."""

from __future__ import annotations

import re
from typing import Any

# Numeric leaves whose key path says they count work, not time.
_COUNTED = re.compile(r"flops|params|parameters|bytes|counts/")
# Key paths that hold measured or machine-specific values under counted names; bytes as
# implemented are counted op by op as the torch build dispatches them, not from shapes alone.
_MEASURED = re.compile(
    r"calibrated|tflops|tbps|peak_mem|telemetry|host/|environment/|timeline/|achieved|_ms|_s$"
    r"|as_implemented"
)


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value (list items collapse to `[]`)."""
    if isinstance(value, dict):
        paths = {prefix} if prefix else set()
        for key, item in value.items():
            paths |= key_paths(item, f"{prefix}/{key}")
        return paths
    if isinstance(value, list):
        paths = {prefix}
        for item in value:
            paths |= key_paths(item, f"{prefix}[]")
        return paths
    return {prefix}


def counted_values(value: Any, prefix: str = "") -> dict[str, float]:
    """The numeric leaves that count FLOPs, parameters, bytes or records, by key path."""
    if isinstance(value, dict):
        found: dict[str, float] = {}
        for key, item in value.items():
            found |= counted_values(item, f"{prefix}/{key}")
        return found
    if isinstance(value, list):
        found = {}
        for index, item in enumerate(value):
            found |= counted_values(item, f"{prefix}[{index}]")
        return found
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and _COUNTED.search(prefix) and not _MEASURED.search(prefix):
        return {prefix: float(value)}
    return {}


def fingerprint(metrics: dict[str, Any]) -> dict[str, Any]:
    """Key paths and counted values of `metrics`, as JSON-ready data."""
    return {"keys": sorted(key_paths(metrics)), "counted": counted_values(metrics)}

"""The A/A control: the baseline profiled again as one more arm, so that the drift between
runs is measured rather than assumed away.

Baseline and variants run in separate jobs, minutes apart, and the host and GPU drift in
between; an interval over pages covers page-to-page spread, not that drift. The control runs
the baseline's own settings, scheduled like a variant and after every other arm, shard by
shard. Per shard, log(baseline total / control total) is drift alone; the comparison engine
(`vlmprof.variants.paired`) turns it into each variant's interval and takes the baseline
averaged with the control as the reference the variants are measured against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmprof.variants.switches import BASELINE, VariantError

# The status of the control's comparison rows and its verdict on them.
CONTROL = "control"
CONTROL_VERDICT = "control: drift between runs"


def control_arm(variants: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
    """The control's name when the run profiles one (variants configured and the control
    enabled), else None; a name taken by a variant or the baseline is refused."""
    if not variants or not settings.get("enabled", True):
        return None
    name = settings.get("name", CONTROL)
    if name == BASELINE or name in variants:
        raise VariantError(
            f"variant_control.name: {name!r} is taken by "
            f"{'the baseline' if name == BASELINE else 'a variant'}; name the control otherwise"
        )
    return name

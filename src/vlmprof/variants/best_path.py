"""A model's best gated path: the decode path built for speed that the switch table lets it
take on the run's device, profiled beside its released path in the model comparison and
gated against it (on a CPU a static KV cache need not beat the released path: both are
measured).

The decode paths are tried fastest first: each step one replayed CUDA graph over a static KV
cache (a model with MoE experts needs them grouped, or batched where a graph cannot capture
grouped experts), then a static KV cache alone (what a CPU takes). The first one the
switches' refusals let through, with the switches the config chooses for the model over it,
is its best path; no rule is written here that `SWITCHES` does not already hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmprof.variants.switches import VariantError, check_switches

# The two paths each compared model is profiled on.
RELEASED = "released"
BEST = "best"
# Decode paths, fastest first; the last, no switch, stands for the config's choice alone.
DECODE_PATHS: tuple[dict[str, str], ...] = (
    {"decode": "cuda_graph"},
    {"decode": "cuda_graph", "experts": "grouped"},
    {"decode": "cuda_graph", "experts": "batched"},
    {"decode": "static"},
    {},
)


def best_switches(view: Mapping[str, Any], chosen: Mapping[str, Any]) -> dict[str, Any] | None:
    """The switches of the best path of a model's released arm of view `view`: the first of
    `DECODE_PATHS` it can take with the `chosen` switches over it; None where it takes none
    but its released path (a checkpoint's own code, say)."""
    for path in DECODE_PATHS:
        switches = {**path, **chosen}
        try:
            check_switches("best", view, switches)
        except VariantError:
            continue
        return switches or None
    return None

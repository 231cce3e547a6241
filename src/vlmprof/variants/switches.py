"""Variant switches: names in the config, mapped onto the model spec, refused when impossible.

A variant is a name and a few switches over the baseline (the run's own model settings,
which by default are the released code path). Switches that only change how the same
computation runs (experts, attention, decode, compile, routing, sam_attention, vision,
preprocess, batch_size, workers, dtype) are optimisations and must pass the correctness
gate; switches that change what is computed (preset, mode, max_crops) make a sweep point, a
different workload with its own FLOP count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmprof.models.base import (
    BATCHING_MODELS,
    LATER_FIELDS,
    MODULE_TREE_SWITCHES,
    batches_pages,
    released_values,
)

BASELINE = "baseline"
EXPERTS = {"loop": "eager", "grouped": "grouped_mm", "batched": "batched_mm"}
# Switch name -> model spec field, for the switches copied as they are: every switch but
# `attention` sets the spec field of its own name.
SAME_NAMED = (
    "decode",
    "compile",
    "routing",
    "sam_attention",
    "vision",
    "preprocess",
    "batch_size",
    "workers",
    "dtype",
    "preset",
    "mode",
    "max_crops",
    "perturb",
)
SPEC_FIELDS = {"attention": "attn_implementation", **{name: name for name in SAME_NAMED}}
WORKLOAD_SWITCHES = ("preset", "mode", "max_crops")
MODELS_WITH_SAM = ("deepseek_ocr", "deepseek_ocr2")
MODELS_WITH_EXPERTS = ("deepseek_ocr", "deepseek_ocr2")
# Switch -> (the value that needs a CUDA device, what to do instead on another device).
CUDA_ONLY = {
    "decode": ("cuda_graph", "use decode: static"),
    "vision": ("cuda_graph", "the switch"),
    "preprocess": ("gpu", "the switch (on a CPU both paths run on the CPU)"),
}
# Switch -> (the value that needs SAM's vision stages, why): refused for other models.
SAM_ONLY = {
    "sam_attention": ("folded", "changes SAM's attention and model {model} has no SAM"),
    "vision": ("cuda_graph", "captures the vision stages and model {model} has no vision stages"),
}
# Switch -> (its released value, what any other value changes): refused for models without
# MoE experts at any other value.
MOE_ONLY = {
    "experts": ("loop", "picks how the MoE experts run"),
    "routing": ("eager", "compiles the MoE routers"),
}


class VariantError(ValueError):
    """A variant that cannot run as configured; the message names the config key."""


def variant_spec(base: Mapping[str, Any], switches: Mapping[str, Any]) -> dict[str, Any]:
    """The model spec of a variant: the baseline's spec with the switches applied."""
    spec = dict(base)
    for switch, value in switches.items():
        if switch == "experts":
            spec["experts_implementation"] = EXPERTS[value]
        else:
            spec[SPEC_FIELDS[switch]] = value
    return spec


def changes_workload(base: Mapping[str, Any], switches: Mapping[str, Any]) -> bool:
    """Whether the variant computes something else than the baseline (a sweep point)."""
    spec = variant_spec(base, switches)
    return any(spec[SPEC_FIELDS[key]] != base[SPEC_FIELDS[key]] for key in WORKLOAD_SWITCHES)


def check_variant(name: str, base: Mapping[str, Any], switches: Mapping[str, Any]) -> None:
    """Raise a VariantError when the variant cannot run on the run's device and model."""
    if name == BASELINE:
        raise VariantError(
            "variants.baseline: the name is taken by the run's own settings; name the variant"
            " after what it changes"
        )
    spec = {**LATER_FIELDS, **variant_spec(base, switches)}  # fields a base may predate
    key = f"variants.{name}"
    for switch, (value, instead) in CUDA_ONLY.items():
        if spec[switch] == value and not str(spec["device"]).startswith("cuda"):
            raise VariantError(
                f"{key}.{switch}: {value} needs a CUDA device and this run is on "
                f"{spec['device']}; drop the variant or {instead}"
            )
    if spec["decode"] == "cuda_graph" and spec["name"] in MODELS_WITH_EXPERTS:
        if spec["experts_implementation"] == EXPERTS["loop"]:
            raise VariantError(
                f"{key}.decode: cuda_graph cannot capture the expert loop (it reads expert"
                " counts back to the host every layer); add experts: grouped or batched"
            )
        if spec["experts_implementation"] == EXPERTS["grouped"] and spec["dtype"] == "float32":
            raise VariantError(
                f"{key}.decode: cuda_graph cannot capture grouped experts in float32 (torch's"
                " grouped matmul copies to the host in float32); use experts: batched or"
                " dtype: bfloat16"
            )
    if base.get("checkpoint") and "preset" in switches:
        raise VariantError(
            f"{key}.preset: a checkpoint run takes its dimensions from the checkpoint;"
            " drop the preset switch"
        )
    for switch, (value, why) in SAM_ONLY.items():
        if spec[switch] == value and spec["name"] not in MODELS_WITH_SAM:
            raise VariantError(
                f"{key}.{switch}: {value} {why.format(model=spec['name'])}; it applies to"
                f" {', '.join(MODELS_WITH_SAM)}"
            )
    for switch, (released, what) in MOE_ONLY.items():
        value = switches.get(switch, released)
        if value != released and spec["name"] not in MODELS_WITH_EXPERTS:
            raise VariantError(
                f"{key}.{switch}: {value} {what} and model {spec['name']} has none; it"
                f" applies to {', '.join(MODELS_WITH_EXPERTS)}"
            )
    if spec["sam_attention"] == "folded" and spec["attn_implementation"] != "sdpa":
        raise VariantError(
            f"{key}.sam_attention: folded runs SAM's attention through SDPA, so it cannot be"
            f" measured with attention: {spec['attn_implementation']}; use attention: sdpa"
        )
    if spec["preprocess"] == "gpu" and spec["name"] != "deepseek_ocr":
        raise VariantError(
            f"{key}.preprocess: gpu is built for deepseek_ocr's views, not model"
            f" {spec['name']}; drop the switch"
        )
    if spec["routing"] == "fused" and spec["compile"] in ("decoder", "all"):
        raise VariantError(
            f"{key}.routing: fused compiles the routers, which compile: {spec['compile']}"
            " already compiles inside the decoder layers; drop one of the two"
        )
    check_batch_size(spec, f"{key}.batch_size")
    check_workers(spec, f"{key}.workers")
    module_tree_only = sorted(set(switches) & set(MODULE_TREE_SWITCHES))
    if base.get("trust_remote_code") and module_tree_only:
        raise VariantError(
            f"{key}: {', '.join(module_tree_only)} need our module tree, not the"
            " checkpoint's own code (model.trust_remote_code)"
        )


def check_batch_size(spec: Mapping[str, Any], key: str) -> None:
    """Raise a VariantError naming `key` when `spec` batches pages its model cannot take
    together (`models.base.batches_pages`)."""
    if spec["batch_size"] == 1 or batches_pages(spec["name"], spec.get("trust_remote_code", False)):
        return
    whose = (
        "the checkpoint's own code (model.trust_remote_code)"
        if spec.get("trust_remote_code")
        else f"model {spec['name']}"
    )
    raise VariantError(
        f"{key}: {spec['batch_size']} pages at once are built for"
        f" {', '.join(sorted(BATCHING_MODELS))}'s own module tree, and {whose} takes one page"
        " at a time; use batch_size: 1"
    )


def check_workers(spec: Mapping[str, Any], key: str) -> None:
    """Raise a VariantError naming `key` when worker processes would preprocess on the GPU
    (they are forked from a process that holds the GPU, and must not touch it)."""
    if spec["workers"] > 0 and spec["preprocess"] == "gpu":
        raise VariantError(
            f"{key}: {spec['workers']} worker processes preprocess on the host, and"
            " preprocess: gpu makes the pixels on the model's device in the timing process;"
            " use workers: 0 with preprocess: gpu"
        )


# Run precisions narrower than the gate's check precision (float32): an arm of such a run
# is also run in float32 for the gate, so a wrong code path is told from rounding.
NARROW_DTYPES = ("bfloat16", "float16")


def run_dtype(spec: Mapping[str, Any]) -> str:
    """The dtype a spec runs in: `auto` is bfloat16 on CUDA and float32 elsewhere."""
    if spec["dtype"] != "auto":
        return str(spec["dtype"])
    return "bfloat16" if str(spec["device"]).startswith("cuda") else "float32"


def gate_check_spec(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """An arm's gate check: its own code path with its weights in float32, or None when the
    run is float32 or wider (its own outputs are then the check).

    Two switches change there: a graph cannot capture grouped experts in float32 (torch's
    grouped matmul copies to the host), and batched experts gather every token's expert
    weights (23 GB for one full-size prefill), so such a check decodes the same static cache
    eagerly, and the graph's replay is judged at the run's precision; pixels made on the GPU
    are an input, not the code path, so the check reads the host's and the run's precision
    check judges the pixels."""
    if run_dtype(spec) not in NARROW_DTYPES:
        return None
    check = {**spec, "upcast": "float32", "preprocess": "cpu", "workers": 0}
    if check["decode"] == "cuda_graph" and check["experts_implementation"] == EXPERTS["grouped"]:
        check["decode"] = "static"
    return check


def oracle_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The oracle every arm's error is measured against: the baseline's weights on the
    released code path (one page at a time, eager decode, the expert loop), in float64."""
    return {
        **spec,
        **MODULE_TREE_SWITCHES,
        **released_values(("preprocess", "batch_size", "workers")),
        "experts_implementation": EXPERTS["loop"],
        "upcast": "float64",
    }

"""Variant switches: names in the config, each setting one field of an arm, refused when
impossible.

A variant is a name and a few switches over the baseline (the run's own model and settings,
which by default are the released code path). `SWITCHES` is the one table of them: each
sets one field, of the model spec (`ModelSpec`: what is built) or of the run settings
(`ProfileSettings`: how it is run: batch size, workers, where pages are preprocessed), and
carries the rules that refuse it. Switches that only change how the same computation runs
are optimisations and must pass the correctness gate; switches that change what is computed
(`workload`: preset, mode, max_crops) make a sweep point, a different workload with its own
FLOP count.

Switches and refusals read an arm as one flat mapping, its view: the model spec's fields and
the run settings together (their names do not overlap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vlmprof.models import resolution_modes
from vlmprof.models.base import (
    BATCHING_MODELS,
    LATER_FIELDS,
    MODULE_TREE_SWITCHES,
    ModelSpec,
    batches_pages,
)
from vlmprof.runtime.profile_settings import RELEASED_SHAPE

BASELINE = "baseline"
EXPERTS = {"loop": "eager", "grouped": "grouped_mm", "batched": "batched_mm"}
MODELS_WITH_SAM = ("deepseek_ocr", "deepseek_ocr2")
MODELS_WITH_EXPERTS = ("deepseek_ocr", "deepseek_ocr2")
SPEC_FIELDS = frozenset(item.name for item in fields(ModelSpec))

# Why an arm cannot run, given the config key it is judged under (the switch's own key), the
# arm's view (model spec fields and run settings) and the variant's switches; None if it can.
Refusal = Callable[[str, Mapping[str, Any], Mapping[str, Any]], str | None]


class VariantError(ValueError):
    """A variant that cannot run as configured; the message names the config key."""


@dataclass(frozen=True)
class Switch:
    """A variant switch: the field of the arm it sets, whether it changes the workload (a
    sweep point: its own FLOP count, no gate), its config values that name another field
    value, and the rules that refuse it."""

    field: str
    workload: bool = False
    values: Mapping[Any, Any] = field(default_factory=dict)
    refusals: tuple[Refusal, ...] = ()

    def value(self, configured: Any) -> Any:
        """The field's value for the switch's `configured` value."""
        return self.values.get(configured, configured)

    @property
    def sets_model(self) -> bool:
        """Whether it changes what is built (a ModelSpec field), not how it is run."""
        return self.field in SPEC_FIELDS


def _on_cuda(arm: Mapping[str, Any]) -> bool:
    return str(arm["device"]).startswith("cuda")


def needs_cuda(name: str, value: Any, instead: str) -> Refusal:
    """Refuses field `name` at `value` off a CUDA device, saying what to do `instead`."""

    def refusal(key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]) -> str | None:
        if arm[name] != value or _on_cuda(arm):
            return None
        return (
            f"{key}: {value} needs a CUDA device and this run is on {arm['device']}; drop the"
            f" variant or {instead}"
        )

    return refusal


def needs_sam(name: str, value: Any, why: str) -> Refusal:
    """Refuses field `name` at `value` for a model without SAM's vision stages."""

    def refusal(key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]) -> str | None:
        if arm[name] != value or arm["name"] in MODELS_WITH_SAM:
            return None
        return (
            f"{key}: {value} {why.format(model=arm['name'])}; it applies to"
            f" {', '.join(MODELS_WITH_SAM)}"
        )

    return refusal


def needs_experts(switch: str, released: Any, what: str) -> Refusal:
    """Refuses `switch` set to anything but its `released` value for a model without MoE
    experts."""

    def refusal(key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]) -> str | None:
        value = switches.get(switch, released)
        if value == released or arm["name"] in MODELS_WITH_EXPERTS:
            return None
        return (
            f"{key}: {value} {what} and model {arm['name']} has none; it applies to"
            f" {', '.join(MODELS_WITH_EXPERTS)}"
        )

    return refusal


def graphs_capture_experts(
    key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]
) -> str | None:
    """A CUDA-graph decode cannot capture the expert loop, nor grouped experts in float32."""
    if arm["decode"] != "cuda_graph" or arm["name"] not in MODELS_WITH_EXPERTS:
        return None
    if arm["experts_implementation"] == EXPERTS["loop"]:
        return (
            f"{key}: cuda_graph cannot capture the expert loop (it reads expert counts back to"
            " the host every layer); add experts: grouped or batched"
        )
    if arm["experts_implementation"] == EXPERTS["grouped"] and arm["dtype"] == "float32":
        return (
            f"{key}: cuda_graph cannot capture grouped experts in float32 (torch's grouped"
            " matmul copies to the host in float32); use experts: batched or dtype: bfloat16"
        )
    return None


def folded_needs_sdpa(key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]) -> str | None:
    """Folded SAM attention runs through SDPA."""
    if arm["sam_attention"] != "folded" or arm["attn_implementation"] == "sdpa":
        return None
    return (
        f"{key}: folded runs SAM's attention through SDPA, so it cannot be measured with"
        f" attention: {arm['attn_implementation']}; use attention: sdpa"
    )


def device_views_of_deepseek_ocr(
    key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]
) -> str | None:
    """Pixels made on the GPU are DeepSeek-OCR's views."""
    if arm["preprocess"] != "gpu" or arm["name"] == "deepseek_ocr":
        return None
    return f"{key}: gpu is built for deepseek_ocr's views, not model {arm['name']}; drop the switch"


def routers_compiled_once(
    key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]
) -> str | None:
    """Fused routing compiles the routers, which a compiled decoder compiles already."""
    if arm["routing"] != "fused" or arm["compile"] not in ("decoder", "all"):
        return None
    return (
        f"{key}: fused compiles the routers, which compile: {arm['compile']} already compiles"
        " inside the decoder layers; drop one of the two"
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


def _raised(check: Callable[[Mapping[str, Any], str], None]) -> Refusal:
    """A check that raises, as a refusal."""

    def refusal(key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]) -> str | None:
        try:
            check(arm, key)
        except VariantError as error:
            return str(error)
        return None

    return refusal


def known_mode(key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]) -> str | None:
    """A model that cuts pages into views knows only its own resolution modes."""
    modes = resolution_modes(arm["name"])
    if modes is None or arm["mode"] in modes:
        return None
    return (
        f"{key}: {arm['name']} has no resolution mode {arm['mode']!r}; it knows {', '.join(modes)}"
    )


def dims_of_checkpoint(key: str, arm: Mapping[str, Any], switches: Mapping[str, Any]) -> str | None:
    """A checkpoint brings its own dimensions."""
    if not arm.get("checkpoint") or "preset" not in switches:
        return None
    return (
        f"{key}: a checkpoint run takes its dimensions from the checkpoint; drop the preset switch"
    )


# Every switch by its config name (as workflow/schemas/config.schema.yaml lists them under
# variants), in the order its refusals are judged.
SWITCHES: dict[str, Switch] = {
    "experts": Switch(
        "experts_implementation",
        values=EXPERTS,
        refusals=(needs_experts("experts", "loop", "picks how the MoE experts run"),),
    ),
    "attention": Switch("attn_implementation"),
    "decode": Switch(
        "decode",
        refusals=(needs_cuda("decode", "cuda_graph", "use decode: static"), graphs_capture_experts),
    ),
    "compile": Switch("compile"),
    "routing": Switch(
        "routing",
        refusals=(
            needs_experts("routing", "eager", "compiles the MoE routers"),
            routers_compiled_once,
        ),
    ),
    "sam_attention": Switch(
        "sam_attention",
        refusals=(
            needs_sam(
                "sam_attention", "folded", "changes SAM's attention and model {model} has no SAM"
            ),
            folded_needs_sdpa,
        ),
    ),
    "vision": Switch(
        "vision",
        refusals=(
            needs_cuda("vision", "cuda_graph", "the switch"),
            needs_sam(
                "vision",
                "cuda_graph",
                "captures the vision stages and model {model} has no vision stages",
            ),
        ),
    ),
    "preprocess": Switch(
        "preprocess",
        refusals=(
            needs_cuda("preprocess", "gpu", "the switch (on a CPU both paths run on the CPU)"),
            device_views_of_deepseek_ocr,
        ),
    ),
    "batch_size": Switch("batch_size", refusals=(_raised(check_batch_size),)),
    "workers": Switch("workers", refusals=(_raised(check_workers),)),
    "pages": Switch("pages"),
    "dtype": Switch("dtype"),
    "preset": Switch("preset", workload=True, refusals=(dims_of_checkpoint,)),
    "mode": Switch("mode", workload=True, refusals=(known_mode,)),
    "max_crops": Switch("max_crops", workload=True),
    "perturb": Switch("perturb"),
}


def arm_view(spec: ModelSpec, settings: Mapping[str, Any]) -> dict[str, Any]:
    """An arm as switches and refusals read it: its spec's fields and its run settings."""
    return {**asdict(spec), **settings}


def split_view(view: Mapping[str, Any]) -> tuple[ModelSpec, dict[str, Any]]:
    """An arm's view as its model spec and its run settings."""
    spec = ModelSpec(**{key: value for key, value in view.items() if key in SPEC_FIELDS})
    return spec, {key: value for key, value in view.items() if key not in SPEC_FIELDS}


def apply_switches(base: Mapping[str, Any], switches: Mapping[str, Any]) -> dict[str, Any]:
    """A variant's view: the baseline's view `base` with the switches applied."""
    view = dict(base)
    for name, value in switches.items():
        switch = SWITCHES[name]
        view[switch.field] = switch.value(value)
    return view


def changes_workload(base: Mapping[str, Any], switches: Mapping[str, Any]) -> bool:
    """Whether the variant computes something else than the baseline (a sweep point)."""
    view = apply_switches(base, switches)
    workload = [switch.field for switch in SWITCHES.values() if switch.workload]
    return any(view[name] != base[name] for name in workload)


def first_refusal(
    view: Mapping[str, Any], key_of: Callable[[str], str], switches: Mapping[str, Any]
) -> tuple[str, str] | None:
    """The first reason, in table order, why an arm of view `view` cannot run, with the key
    it was judged under (each switch's rules under `key_of(switch)`); None if it can."""
    full = {**LATER_FIELDS, **RELEASED_SHAPE, **view}  # fields a view may predate
    for name, switch in SWITCHES.items():
        key = key_of(name)
        for rule in switch.refusals:
            message = rule(key, full, switches)
            if message is not None:
                return key, message
    return None


def check_variant(name: str, base: Mapping[str, Any], switches: Mapping[str, Any]) -> None:
    """Raise a VariantError when the variant cannot run on the run's device and model."""
    if name == BASELINE:
        raise VariantError(
            "variants.baseline: the name is taken by the run's own settings; name the variant"
            " after what it changes"
        )
    check_switches(f"variants.{name}", base, switches)


def check_switches(key: str, base: Mapping[str, Any], switches: Mapping[str, Any]) -> None:
    """Raise a VariantError, naming `key`.<switch>, when `switches` over an arm of view `base`
    cannot run on its device and model."""
    refused = first_refusal(
        apply_switches(base, switches), lambda switch: f"{key}.{switch}", switches
    )
    if refused is not None:
        raise VariantError(refused[1])
    module_tree_only = sorted(
        switch for switch in switches if SWITCHES[switch].field in MODULE_TREE_SWITCHES
    )
    if base.get("trust_remote_code") and module_tree_only:
        raise VariantError(
            f"{key}: {', '.join(module_tree_only)} need our module tree, not the"
            " checkpoint's own code (model.trust_remote_code)"
        )


# Run precisions narrower than the gate's check precision (float32): an arm of such a run
# is also run in float32 for the gate, so a wrong code path is told from rounding.
NARROW_DTYPES = ("bfloat16", "float16")


def run_dtype(view: Mapping[str, Any]) -> str:
    """The dtype an arm runs in: `auto` is bfloat16 on CUDA and float32 elsewhere."""
    if view["dtype"] != "auto":
        return str(view["dtype"])
    return "bfloat16" if _on_cuda(view) else "float32"


def gate_check(view: Mapping[str, Any]) -> dict[str, Any] | None:
    """An arm's gate check (a view): its own code path with its weights in float32, or None
    when the run is float32 or wider (its own outputs are then the check).

    Three fields change there: a graph cannot capture grouped experts in float32 (torch's
    grouped matmul copies to the host), and batched experts gather every token's expert
    weights (23 GB for one full-size prefill), so such a check decodes the same static cache
    eagerly, and the graph's replay is judged at the run's precision; pixels made on the GPU
    are an input, not the code path, so the check reads the host's, inline, and the run's
    precision check judges the pixels."""
    if run_dtype(view) not in NARROW_DTYPES:
        return None
    check = {**view, "upcast": "float32", "preprocess": "cpu", "workers": 0}
    if check["decode"] == "cuda_graph" and check["experts_implementation"] == EXPERTS["grouped"]:
        check["decode"] = "static"
    return check


def oracle(view: Mapping[str, Any]) -> dict[str, Any]:
    """The oracle every arm's error is measured against (a view): the baseline's weights on
    the released code path (one page at a time, inline, eager decode, the expert loop), in
    float64."""
    return {
        **view,
        **MODULE_TREE_SWITCHES,
        **RELEASED_SHAPE,
        "experts_implementation": EXPERTS["loop"],
        "upcast": "float64",
    }

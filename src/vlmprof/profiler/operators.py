"""Operator tables from torch.profiler events: top operators, a category rollup, checks.

Every operator event is attributed to the innermost stage label (`record_function` range)
that encloses it on its thread, read from the profiler's own parent links, which it builds
by time-interval containment per thread. On CUDA, kernel time reaches an operator through
the profiler's correlation of each kernel to the CPU operator that launched it
(`self_device_time_total`). Kernels replayed from a CUDA graph have no launching operator
(torch.profiler hangs them on the enclosing label); they are read from the trace instead,
one row per kernel in the stage whose label encloses the replay (`graph_replay_frame`).
Decoder work of the prefill (ops under `prefill` but under none
of the vision labels) is reported as `llm_prefill`.

Times are SELF times: an operator's own time without its children. Self times partition the
profiled time, so summing them over all operators counts nothing twice. Leaf operators
alone would miss real work: on CPU, `aten::_scaled_dot_product_flash_attention_for_cpu`
and `aten::mkldnn_convolution` compute in their own body after allocating children.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from vlmprof.stages import EXCLUSIVE_STAGES, VISION_PARTS

# record_function labels that open a stage (vision sub-stages, then the generation phases).
STAGE_LABELS: tuple[str, ...] = (*VISION_PARTS, "prefill", "decode")
# Stages as reported: exclusive, so their self times add up to the profiled total.
STAGES: tuple[str, ...] = EXCLUSIVE_STAGES
UNATTRIBUTED = "unattributed"
# record_function label put around each mixture-of-experts block (a module with `experts`).
MOE_LABEL = "category:moe"

CATEGORIES: tuple[str, ...] = (
    "attention",
    "moe",
    "dense_gemm",
    "convolution",
    "normalisation",
    "elementwise",
    "copies",
    "other",
)

# Name rules, applied to the ATen name without namespace and trailing "_" (in-place).
_ATTENTION_PARTS = ("scaled_dot_product", "attention", "softmax")
# Batched products of activations: in these models linear layers lower to addmm/mm, so
# bmm/baddbmm only come from attention scores and value mixing (SAM's rel-pos einsum too).
_ATTENTION_NAMES = {"bmm", "baddbmm"}
_MOE_NAMES = {
    "topk",
    "one_hot",
    "index_add",
    "where",
    "nonzero",
    "_grouped_mm",
    "grouped_mm",
    "histc",
    "bincount",
}
_GEMM_NAMES = {
    "addmm",
    "mm",
    "linear",
    "matmul",
    "_addmm_activation",
    "addmv",
    "mv",
    "dot",
    "_scaled_mm",
    "_int_mm",
}
_NORM_PARTS = ("layer_norm", "rms_norm", "group_norm", "batch_norm")
_NORM_NAMES = {"pow", "mean", "rsqrt", "var", "var_mean"}
_COPY_NAMES = {
    "copy",
    "to",
    "_to_copy",
    "cat",
    "stack",
    "contiguous",
    "clone",
    "index",
    "index_select",
    "gather",
    "scatter",
    "masked_scatter",
    "index_put",
    "embedding",
    "constant_pad_nd",
    "pad",
    "repeat",
    "_unsafe_index",
}
_ELEMENTWISE_NAMES = {
    "add",
    "sub",
    "rsub",
    "mul",
    "div",
    "neg",
    "exp",
    "log",
    "sqrt",
    "abs",
    "sin",
    "cos",
    "gelu",
    "silu",
    "relu",
    "sigmoid",
    "tanh",
    "erf",
    "clamp",
    "clamp_min",
    "clamp_max",
    "fill",
    "zero",
    "masked_fill",
    "maximum",
    "minimum",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "greater",
    "less",
    "logical_and",
    "logical_or",
    "logical_not",
    "bitwise_and",
    "bitwise_or",
    "bitwise_not",
    "reciprocal",
    "addcmul",
    "lerp",
}


def categorize(name: str, in_moe_block: bool = False, in_attention: bool = False) -> str:
    """Category of one operator event, by the first rule that matches.

    1. moe: inside a mixture-of-experts block (router, routed and shared experts, dispatch
       and combine), known from the `MOE_LABEL` range; 2. attention: inside an attention
       operator, or named like one (scaled_dot_product, attention, softmax, bmm, baddbmm);
    3. moe by name outside such blocks (routing: topk, one_hot, index_add, where, nonzero,
       grouped_mm, histc, bincount); 4. dense_gemm (addmm, mm, linear, matmul, ...);
    5. convolution (any name with "conv"); 6. normalisation (layer/rms/group/batch norm,
       and the pieces of an eager RMSNorm: pow, mean, rsqrt); 7. copies (copy_, to, cat,
       contiguous, clone, index and gather ops, padding, memcpy); 8. elementwise
       (arithmetic, activations, comparisons, fill); 9. other (views, allocation,
       reductions, runtime calls).
    """
    lowered = name.rsplit("::", 1)[-1].removesuffix("_").lower()
    if in_moe_block:
        return "moe"
    if in_attention or lowered in _ATTENTION_NAMES or any(p in lowered for p in _ATTENTION_PARTS):
        return "attention"
    if lowered in _MOE_NAMES:
        return "moe"
    if lowered in _GEMM_NAMES:
        return "dense_gemm"
    if "conv" in lowered:
        return "convolution"
    if lowered in _NORM_NAMES or any(p in lowered for p in _NORM_PARTS):
        return "normalisation"
    if lowered in _COPY_NAMES or "memcpy" in lowered:
        return "copies"
    if lowered in _ELEMENTWISE_NAMES:
        return "elementwise"
    return "other"


# Kernel-name rules for kernels known only by name (replayed from a CUDA graph), first
# match wins: SDPA's backends, convolutions (cuDNN's implicit GEMMs among them), library
# GEMMs (cuBLAS's nvjet/xmma/gemv, CUTLASS), norms, then ATen's copy, index and
# elementwise kernels.
_KERNEL_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("attention", re.compile(r"flash|fmha|attention|sdpa|softmax", re.IGNORECASE)),
    ("convolution", re.compile(r"conv", re.IGNORECASE)),
    ("dense_gemm", re.compile(r"gemm|gemv|cutlass|nvjet|xmma|cublas", re.IGNORECASE)),
    ("normalisation", re.compile(r"norm", re.IGNORECASE)),
    ("copies", re.compile(r"copy|cat|index|gather|scatter|memcpy|pad", re.IGNORECASE)),
    ("elementwise", re.compile(r"elementwise|vectorized|unrolled|fill", re.IGNORECASE)),
)
GRAPH_REPLAY_PREFIX = "[graph] "


def categorize_kernel(name: str) -> str:
    """Category of a kernel from its name alone, by `_KERNEL_RULES` (else "other").

    Without its launching operator, an expert's GEMM reads as dense_gemm: kernel names do
    not say which module ran them.
    """
    for category, pattern in _KERNEL_RULES:
        if pattern.search(name):
            return category
    return "other"


def kernel_short_name(name: str) -> str:
    """A kernel's name without return type, template arguments and parameters."""
    name = name.removeprefix("void ").strip()
    return re.split(r"[<(]", name, maxsplit=1)[0] or name


def graph_replay_frame(kernels: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Operator rows for kernels replayed from CUDA graphs (`graph_replay_kernels`): one
    row per kernel, named `[graph] <kernel>`, categorised by its name, device time only."""
    rows = [
        {
            "operator": GRAPH_REPLAY_PREFIX + kernel_short_name(k["name"]),
            "stage": _exclusive_stage(k["stage"]),
            "category": categorize_kernel(k["name"]),
            "self_cpu_us": 0.0,
            "total_cpu_us": 0.0,
            "self_device_us": float(k["device_us"]),
            "total_device_us": float(k["device_us"]),
            "mem_bytes": 0,
        }
        for k in kernels
    ]
    return pd.DataFrame(rows, columns=_EVENT_COLUMNS)


def _is_attention_op(name: str) -> bool:
    return any(p in name.lower() for p in _ATTENTION_PARTS)


def _is_annotation(event: Any) -> bool:
    return bool(getattr(event, "is_user_annotation", False))


def _context(
    event: Any, cache: dict[int, tuple[str | None, bool, bool]], stage_labels: frozenset[str]
) -> tuple[str | None, bool, bool]:
    """(innermost stage label, inside a MoE block, inside an attention op) above `event`."""
    chain = []
    parent = event.cpu_parent
    while parent is not None and id(parent) not in cache:
        chain.append(parent)
        parent = parent.cpu_parent
    context = cache[id(parent)] if parent is not None else (None, False, False)
    for ancestor in reversed(chain):
        stage, moe, attention = context
        if _is_annotation(ancestor):
            if ancestor.name in stage_labels:
                stage = ancestor.name  # walking down, the innermost label wins
            moe = moe or ancestor.name == MOE_LABEL
        else:
            attention = attention or _is_attention_op(ancestor.name)
        context = (stage, moe, attention)
        cache[id(ancestor)] = context
    return context


_EVENT_COLUMNS = [
    "operator",
    "stage",
    "category",
    "self_cpu_us",
    "total_cpu_us",
    "self_device_us",
    "total_device_us",
    "mem_bytes",
]


def op_event_frame(
    events: Iterable[Any], stage_labels: Sequence[str] = STAGE_LABELS
) -> pd.DataFrame:
    """One row per CPU operator event of `prof.events()`, with its stage and category.

    Columns: operator, stage (exclusive: `llm_prefill` for decoder work in prefill,
    `unattributed` outside every label), category, self/total CPU and device time (us),
    mem_bytes (host plus device memory its call allocated, children included, net of what
    it freed: mostly the outputs it returns).
    Annotations, memory markers and device-side events (kernels, already counted in their
    launching operator's device time) are left out.
    """
    labels = frozenset(stage_labels)
    cache: dict[int, tuple[str | None, bool, bool]] = {}
    rows = []
    for event in events:
        if _is_annotation(event) or event.name == "[memory]":
            continue
        if event.device_type.name != "CPU":  # by name: the tables import no torch
            continue
        stage, in_moe, in_attention = _context(event, cache, labels)
        rows.append(
            {
                "operator": event.name,
                "stage": _exclusive_stage(stage),
                "category": categorize(event.name, in_moe, in_attention),
                "self_cpu_us": float(event.self_cpu_time_total),
                "total_cpu_us": float(event.cpu_time_total),
                "self_device_us": float(event.self_device_time_total),
                "total_device_us": float(event.device_time_total),
                "mem_bytes": int(event.cpu_memory_usage) + int(event.device_memory_usage),
            }
        )
    return pd.DataFrame(rows, columns=_EVENT_COLUMNS)


def _exclusive_stage(label: str | None) -> str:
    if label is None:
        return UNATTRIBUTED
    return "llm_prefill" if label == "prefill" else label


def time_basis(frame: pd.DataFrame) -> str:
    """Time basis of the events: "device" when any operator has device time, else "cpu"."""
    return "device" if frame["self_device_us"].sum() > 0 else "cpu"


def _self_total(frame: pd.DataFrame) -> tuple[str, str]:
    basis = time_basis(frame)
    return (f"self_{basis}_us", f"total_{basis}_us")


def stage_totals_ms(frame: pd.DataFrame) -> dict[str, float]:
    """Self time (ms) of all operators per exclusive stage, `unattributed` included."""
    self_col, _ = _self_total(frame)
    sums = frame.groupby("stage")[self_col].sum() / 1000.0
    order = [*STAGES, UNATTRIBUTED]
    return {stage: float(sums.get(stage, 0.0)) for stage in order}


def attribution(frame: pd.DataFrame, device_total_us: float | None = None) -> dict[str, Any]:
    """Share of operator self time that falls under a stage label.

    On CUDA pass `device_total_us` (all kernel, memcpy and memset time in the traces):
    device work that no CPU operator launched then counts as unattributed too.
    """
    self_col, _ = _self_total(frame)
    total_us = float(frame[self_col].sum())
    attributed_us = float(frame.loc[frame["stage"] != UNATTRIBUTED, self_col].sum())
    if device_total_us is not None and time_basis(frame) == "device":
        total_us = max(total_us, device_total_us)
    return {
        "basis": time_basis(frame),
        "total_ms": total_us / 1000.0,
        "attributed_ms": attributed_us / 1000.0,
        "unattributed_ms": (total_us - attributed_us) / 1000.0,
        "attributed_share": attributed_us / total_us if total_us > 0 else 0.0,
    }


def _stage_column(stage: str) -> str:
    return f"{stage} (ms)"


def operator_table(frame: pd.DataFrame, top_n: int | None = None) -> pd.DataFrame:
    """Operators (one row per name and category) by self time, heaviest first.

    Columns: operator, category, calls, "total (ms)" (inclusive), "self (ms)", stage (the
    stage holding most of its self time), "share of stage" (its self time there over that
    stage's total), "mem alloc (bytes)" (net bytes its calls allocated, children included,
    so not additive across nested rows), and "<stage> (ms)" per stage. Times are device
    times on CUDA and CPU times on CPU. `top_n` None keeps every operator.
    """
    self_col, total_col = _self_total(frame)
    keys = ["operator", "category"]
    grouped = frame.groupby(keys, sort=False)
    table = pd.DataFrame(
        {
            "calls": grouped.size(),
            "total (ms)": grouped[total_col].sum() / 1000.0,
            "self (ms)": grouped[self_col].sum() / 1000.0,
            "mem alloc (bytes)": grouped["mem_bytes"].sum(),
        }
    )
    per_stage = frame.pivot_table(
        index=keys, columns="stage", values=self_col, aggfunc="sum", fill_value=0.0
    )
    for stage in [*STAGES, UNATTRIBUTED]:
        values = per_stage[stage] if stage in per_stage.columns else 0.0
        table[_stage_column(stage)] = (
            pd.Series(values, index=per_stage.index).reindex(table.index).fillna(0.0) / 1000.0
        )
    stage_cols = [_stage_column(s) for s in [*STAGES, UNATTRIBUTED]]
    main = table[stage_cols].idxmax(axis=1).str.removesuffix(" (ms)")
    totals = stage_totals_ms(frame)
    main_ms = table[stage_cols].max(axis=1)
    stage_total = main.map(totals)
    table["stage"] = main
    table["share of stage"] = (main_ms / stage_total.where(stage_total > 0)).fillna(0.0)
    table = table.reset_index().sort_values("self (ms)", ascending=False, kind="stable")
    columns = [
        "operator",
        "category",
        "calls",
        "total (ms)",
        "self (ms)",
        "share of stage",
        "stage",
        "mem alloc (bytes)",
        *stage_cols,
    ]
    table = table[columns].reset_index(drop=True)
    return table if top_n is None else table.head(top_n)


def category_rollup(frame: pd.DataFrame) -> pd.DataFrame:
    """Self time per category (ms), its share of all operator time and its split by stage."""
    self_col, _ = _self_total(frame)
    per_stage = frame.pivot_table(
        index="category", columns="stage", values=self_col, aggfunc="sum", fill_value=0.0
    )
    rollup = pd.DataFrame(index=pd.Index(CATEGORIES, name="category"))
    total = frame.groupby("category")[self_col].sum().reindex(CATEGORIES).fillna(0.0)
    rollup["self (ms)"] = total / 1000.0
    grand = float(total.sum())
    rollup["share"] = total / grand if grand > 0 else 0.0
    for stage in [*STAGES, UNATTRIBUTED]:
        column = per_stage[stage] if stage in per_stage.columns else None
        rollup[_stage_column(stage)] = (
            column.reindex(CATEGORIES).fillna(0.0) / 1000.0 if column is not None else 0.0
        )
    return rollup.reset_index()


def stage_consistency(frame: pd.DataFrame, top: pd.DataFrame) -> pd.DataFrame:
    """Per stage: the top table's sum, the rest (every other operator) and the stage total.

    The rest is summed from the events, not from the table, so a top table that lost or
    double counted time shows a non-zero "difference (ms)".
    """
    self_col, _ = _self_total(frame)
    in_top = pd.MultiIndex.from_frame(top[["operator", "category"]])
    event_keys = pd.MultiIndex.from_frame(frame[["operator", "category"]])
    rest = frame[~event_keys.isin(in_top)].groupby("stage")[self_col].sum() / 1000.0
    totals = stage_totals_ms(frame)
    rows = []
    for stage in [*STAGES, UNATTRIBUTED]:
        top_ms = float(top[_stage_column(stage)].sum())
        rest_ms = float(rest.get(stage, 0.0))
        rows.append(
            {
                "stage": stage,
                "top (ms)": top_ms,
                "rest (ms)": rest_ms,
                "stage total (ms)": totals[stage],
                "difference (ms)": top_ms + rest_ms - totals[stage],
            }
        )
    return pd.DataFrame(rows)


def operators_markdown(
    df: pd.DataFrame,
    rollup: pd.DataFrame,
    attribution_summary: Mapping[str, Any] | None = None,
    consistency: pd.DataFrame | None = None,
) -> str:
    """operators.md: the top table, the category rollup, and the attribution and checks."""
    basis = attribution_summary["basis"] if attribution_summary else None
    unit = {"device": "self device time", "cpu": "self CPU time"}.get(basis or "", "self time")
    lines = [
        "# Operators",
        "",
        f"Top {len(df)} operators by {unit}, each attributed to the stage it runs in.",
        "",
    ]
    if attribution_summary:
        lines += [
            f"Attributed to a stage: {attribution_summary['attributed_share']:.1%} of "
            f"{attribution_summary['total_ms']:.2f} ms of operator {unit}.",
            "",
        ]
    lines += [df.to_markdown(index=False, floatfmt=".3f"), "", "## By category", ""]
    lines += [rollup.to_markdown(index=False, floatfmt=".3f"), ""]
    if consistency is not None:
        lines += ["## Stage totals: top table + rest", ""]
        lines += [consistency.to_markdown(index=False, floatfmt=".3f"), ""]
    return "\n".join(lines)

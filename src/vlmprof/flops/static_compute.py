"""The static compute report: parameters, FLOPs and bytes per stage, analytic beside counted.

Analytic formulas are the headline figures; FlopCounterMode and fvcore counts on the real
modules check them. A gap above `AGREEMENT_TOLERANCE` is explained where it can be: ops a
counter cannot see (fvcore and SDPA) are named, and their analytic FLOPs added back.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import torch
from torch import nn

from vlmprof.flops import analytic
from vlmprof.flops.analytic import ModelDims
from vlmprof.flops.counted import decoder_counts, relative_difference, sum_counts, view_counts
from vlmprof.models.deepseek_ocr import views as ocr_views
from vlmprof.models.deepseek_ocr.model import build_module
from vlmprof.models.deepseek_ocr2 import model as ocr2_model
from vlmprof.models.deepseek_ocr2.dims import DeepseekOcr2Dims
from vlmprof.models.prompt_tokenizer import prompt_length
from vlmprof.progress import Progress

AGREEMENT_TOLERANCE = 0.02
# Crop modes are costed for a portrait A4 page at 150 dpi (gundam: 2 x 3 = 6 crops).
REFERENCE_PAGE = (1240, 1754)
# The mode whose views every report carries (its global view and its crop).
ALWAYS_MODE = "gundam"
# Ops fvcore skips whose FLOPs the analytic model knows, by StageCost field.
FVCORE_BLIND_OPS = {"aten::scaled_dot_product_attention": "attention_flops"}
# fvcore's estimates for elementwise ops the analytic model (and FlopCounterMode) leave out.
FVCORE_ELEMENTWISE_OPS = (
    "layer_norm",
    "group_norm",
    "batch_norm",
    "instance_norm",
    "upsample_nearest2d",
    "upsample_bilinear2d",
    "adaptive_avg_pool2d",
    "grid_sampler",
)
# Said where the FLOPs are shown (the static report, the report's cross-check).
CAUSAL_NOTE = (
    "Causal attention (LLM prefill) counts each query against the keys up to itself, "
    "L(L+1)/2 pairs for L tokens, as the fused kernels compute it; vision attention is "
    "bidirectional (the full square). Bytes are the necessary bytes: weights, KV cache and "
    "the matmul-class ops' inputs and outputs."
)
CONVENTIONS = (
    "FLOPs = 2 x multiply-accumulates: a (m x k) by (k x n) matmul is 2*m*k*n FLOPs.",
    "fvcore reports multiply-accumulates; its totals are multiplied by 2 here.",
    "Only matmul-class work is counted (linear, convolution, einsum, attention matmuls); "
    "softmax, norms, activations, RoPE and residual adds are not, as FlopCounterMode does not.",
    "fvcore adds rough estimates for LayerNorm and similar ops (a fraction of a percent) and "
    "cannot see inside scaled_dot_product_attention; its gap is explained by adding the "
    "analytic attention FLOPs back and removing its elementwise estimates.",
    "Causal attention (the decoder's prefill) counts each query against the keys up to "
    "itself, L(L+1)/2 (query, key) pairs for L tokens, not L^2: the fused kernels (flash, "
    "SDPA with is_causal) skip the masked tiles. Bidirectional attention (SAM, CLIP) counts "
    "the full square.",
    "FlopCounterMode counts every SDPA kernel (the CPU one included) by a formula that "
    "reads its is_causal argument, as the analytic formulas count; torch's own formula "
    "counts the full square for causal kernels too. Attention computed as matmuls and "
    "masked afterwards (eager attention, SDPA's math path on the meta device) is counted "
    "as computed: the full square.",
    "DeepSeek-OCR-2: the `clip` stages are its Qwen2 visual encoder, over a view's SAM "
    "tokens plus as many learned queries (full square attention: its hybrid mask goes to "
    "SDPA as a mask, so the kernel computes every pair).",
    "SAM's windowed blocks pad the 14x14-window grid; projections and attention run on the "
    "padded tokens.",
    "The lm_head runs on the last position only in prefill and on the one new token per "
    "decode step.",
    "Prefill does not include vision; the model runs vision inside the first forward pass, "
    "so a measured prefill contains both and they must not be added.",
    "A decode step at context c attends over c positions, itself included; a generation of "
    "`tokens` tokens has tokens - 1 decode steps (the first token comes from prefill) and "
    "step j attends over prefill_len + j positions.",
    "Bytes are the necessary bytes (weights + activations + KV), the least any "
    "implementation moves; MBU divides by them. The bytes as implemented (every op's reads "
    "and writes, counted on the real modules over each page's run) are in metrics.json and "
    "the report, beside them.",
    "weight_bytes: weights read once per call; crops of one size run as one batch. Decode "
    "reads the active weights: attention, dense and shared MLPs, the top-k experts of each "
    "MoE layer, routers, norms, the lm_head and one embedding row.",
    "activation_bytes: inputs read and outputs written by the counted ops, attention fused. "
    "SAM's relative-position bias (which the released code materialises, copies into "
    "SDPA's mask and SDPA reads) and elementwise traffic (norms, activations, residual "
    "adds, layout copies) are not necessary and left out, as elementwise FLOPs are.",
    "kv_bytes: prefill writes each position's K and V (the K and V projections' outputs, "
    "counted here and not again as activations) and attention reads them once; a decode "
    "step reads the cache for its context and writes the new entry.",
    "Decoder counts are scaled from one dense layer, one MoE layer and the lm_head.",
    "Counts run on the CPU (FlopCounterMode on the meta device where shapes alone decide the "
    "ops) with random weights; MoE FLOPs do not depend on the routing (top-k per token).",
)


def report_view_sizes(modes: list[str], geometry: ModuleType = ocr_views) -> list[int]:
    """View sizes the modes use plus the gundam global view and crop, largest first.

    `geometry` is the model's view-geometry module (`analytic.view_geometry(dims)`).
    """
    sizes: set[int] = set()
    for mode in [ALWAYS_MODE, *modes]:
        spec = geometry.mode_spec(mode)
        sizes.add(spec.base_size)
        if spec.crop:
            sizes.add(spec.image_size)
    return sorted(sizes, reverse=True)


def typical_prefill_len(
    dims: ModelDims, sizes: Iterable[tuple[int, int]], mode: str, max_crops: int
) -> int:
    """Median prefill length over pages of the given (width, height) in a mode."""
    geometry = analytic.view_geometry(dims)
    lengths = [
        prompt_length(geometry.plan_views(w, h, mode, max_crops).image_tokens) for w, h in sizes
    ]
    if not lengths:
        raise ValueError("no page sizes to compute a typical prefill length from")
    return int(statistics.median_low(lengths))


def mean_decode_context(prefill_len: int, max_new_tokens: int) -> int:
    """The context of the decode step whose cost stands for every step: halfway through the
    generation, after the prefill and half the new tokens (the cost grows linearly)."""
    return prefill_len + max_new_tokens // 2


def _meta_model(dims: ModelDims) -> nn.Module:
    """The model of `dims` on the meta device, in float32, for counting."""
    if isinstance(dims, DeepseekOcr2Dims):
        return ocr2_model.build_module(dims, "meta", torch.float32)
    return build_module(dims, "meta", torch.float32)


def _fvcore_gap(cost: analytic.StageCost, counts: dict[str, Any]) -> dict[str, Any]:
    """fvcore's total with analytic FLOPs of the ops it skips added, its estimates removed."""
    unsupported = counts["fvcore_unsupported_ops"]
    blind = {op: n for op, n in unsupported.items() if op in FVCORE_BLIND_OPS}
    missing = sum(getattr(cost, FVCORE_BLIND_OPS[op]) for op in blind)
    elementwise = sum(counts["fvcore_by_op"].get(op, 0.0) for op in FVCORE_ELEMENTWISE_OPS)
    adjusted = counts["fvcore"] + missing - elementwise
    rel_after = relative_difference(adjusted, cost.flops)
    return {
        "blind_ops": blind,
        "blind_ops_analytic_flops": missing,
        "elementwise_flops_counted_by_fvcore": elementwise,
        "fvcore_adjusted": adjusted,
        "rel_diff_after": rel_after,
        "explained": abs(rel_after) <= AGREEMENT_TOLERANCE,
    }


def _stage_entry(cost: analytic.StageCost, counts: dict[str, Any] | None) -> dict[str, Any]:
    """One stage's analytic cost beside its counts and their relative differences."""
    entry: dict[str, Any] = {
        "analytic": cost.flops,
        "attention_flops": cost.attention_flops,
        "params": cost.params,
        "weight_bytes": cost.weight_bytes,
        "activation_bytes": cost.activation_bytes,
        "kv_bytes": cost.kv_bytes,
        "necessary_bytes": cost.necessary_bytes,
        "flopcountermode": None,
        "fvcore": None,
        "rel_diff_flopcountermode": None,
        "rel_diff_fvcore": None,
    }
    if counts is None:
        return entry
    entry.update(
        flopcountermode=counts["flopcountermode"],
        fvcore=counts["fvcore"],
        rel_diff_flopcountermode=relative_difference(counts["flopcountermode"], cost.flops),
        rel_diff_fvcore=relative_difference(counts["fvcore"], cost.flops),
        flopcountermode_device=counts["flopcountermode_device"],
        fvcore_unsupported_ops=counts["fvcore_unsupported_ops"],
        fvcore_gap=_fvcore_gap(cost, counts),
    )
    if "note" in counts:
        entry["note"] = counts["note"]
    return entry


def _stage_counts_of_mode(
    view_counted: dict[int, dict[str, dict[str, Any]]], views: list[tuple[int, int]]
) -> dict[str, Any]:
    """Counted vision of one image: every part of each (multiplicity, view size)."""
    parts = [(n, view_counted[size][part]) for n, size in views for part in view_counted[size]]
    return sum_counts(parts, "sum of the per-view counts, crops times their number")


def build_static_compute(
    dims: ModelDims,
    modes: list[str],
    prefill_len: int,
    decode_context: int,
    dtype: str,
    count: bool = True,
    page_size: tuple[int, int] = REFERENCE_PAGE,
    progress_label: str = "FLOP count",
) -> dict[str, Any]:
    """Parameters, per-view FLOPs and per-stage costs, analytic and (if `count`) counted.

    Bytes use `dtype`; counting runs in float32 on the CPU (FLOPs do not depend on dtype).
    `vision_<mode>` is costed for a page of `page_size` pixels (crop modes tile it); the
    per-view entries give any other number of crops. Counting the full model takes a
    minute: its progress (per view size and decoder stage) goes to standard error.
    """
    bytes_per_el = analytic.bytes_per_element(dtype)
    geometry = analytic.view_geometry(dims)
    model = _meta_model(dims) if count else None
    stages: dict[str, Any] = {}
    flops: dict[str, dict[str, float]] = {}
    view_counted: dict[int, dict[str, dict[str, Any]]] = {}
    decoder = {
        "llm_prefill": (
            analytic.llm_prefill_cost(dims, prefill_len, bytes_per_el),
            prefill_len,
            prefill_len,
        ),
        "decode_step": (
            analytic.decode_step_cost(dims, decode_context, bytes_per_el),
            1,
            decode_context,
        ),
    }
    view_sizes = report_view_sizes(modes, geometry)
    counts = len(view_sizes) + len(decoder)
    progress = Progress(progress_label, counts)
    for index, size in enumerate(view_sizes, start=1):
        costs = analytic.view_cost(dims, size, bytes_per_el)
        flops[f"view_{size}"] = {name: cost.flops for name, cost in costs.items()}
        if model is not None:
            view_counted[size] = view_counts(model, dims, size)
            progress.step(f"count {index}/{counts} (view {size})")
        for name, cost in costs.items():
            counted = view_counted[size][name] if model is not None else None
            stages[f"{name}_{size}"] = _stage_entry(cost, counted)
    for mode in modes:
        plan = geometry.plan_views(*page_size, mode)
        cost = analytic.vision_cost(dims, mode, plan.n_crops, bytes_per_el)["vision"]
        views = [(1, plan.global_size)] + ([(plan.n_crops, plan.crop_size)] if plan.n_crops else [])
        counted = _stage_counts_of_mode(view_counted, views) if model is not None else None
        stages[f"vision_{mode}"] = _stage_entry(cost, counted) | {
            "n_crops": plan.n_crops,
            "image_tokens": plan.image_tokens,
            "page_size": list(page_size),
        }
    for index, (name, (cost, q_len, context)) in enumerate(decoder.items(), len(view_sizes) + 1):
        counted = None
        if model is not None:
            counted = decoder_counts(model, dims, q_len, context)
            progress.step(f"count {index}/{counts} ({name})")
        stages[name] = _stage_entry(cost, counted) | {"context_len": context}
    return {
        "dims": dims.to_dict(),
        "dtype": dtype,
        "bytes_per_element": bytes_per_el,
        "prefill_len": prefill_len,
        "decode_context": decode_context,
        "params": analytic.param_counts(dims),
        "flops": flops,
        "stages": stages,
        "fvcore_unsupported_ops": {
            name: entry["fvcore_unsupported_ops"]
            for name, entry in stages.items()
            if "fvcore_unsupported_ops" in entry
        },
        "conventions": list(CONVENTIONS),
    }


def _giga(value: float | None) -> str:
    """A FLOP or byte figure in units of 1e9, or a dash when absent."""
    return "-" if value is None else f"{value / 1e9:,.3f}"


def _percent(value: float | None) -> str:
    """A relative difference as a signed percentage, or a dash when absent."""
    return "-" if value is None else f"{100 * value:+.2f}%"


def _gap_note(name: str, entry: dict[str, Any]) -> str | None:
    """A sentence on a counter gap above tolerance, naming the ops responsible."""
    notes = []
    fcm = entry["rel_diff_flopcountermode"]
    if fcm is not None and abs(fcm) > AGREEMENT_TOLERANCE:
        notes.append(f"FlopCounterMode differs by {_percent(fcm)}, not explained")
    fv = entry["rel_diff_fvcore"]
    if fv is not None and abs(fv) > AGREEMENT_TOLERANCE:
        gap = entry["fvcore_gap"]
        ops = ", ".join(f"`{op}` (x{n:g})" for op, n in gap["blind_ops"].items()) or "none"
        verdict = "explained" if gap["explained"] else "NOT explained"
        notes.append(
            f"fvcore differs by {_percent(fv)}; ops it cannot see: {ops}, worth "
            f"{_giga(gap['blind_ops_analytic_flops'])} GFLOP analytically; with them added and "
            f"its elementwise estimates ({_giga(gap['elementwise_flops_counted_by_fvcore'])} "
            f"GFLOP) removed it differs by {_percent(gap['rel_diff_after'])}: {verdict}"
        )
    return f"- `{name}`: " + "; ".join(notes) + "." if notes else None


def static_compute_markdown(report: dict[str, Any]) -> str:
    """The static compute report as Markdown: parameters, stage table, gap notes, conventions."""
    costed = bool(report["stages"])
    shapes = (
        f"prefill length {report['prefill_len']}; decode context {report['decode_context']}"
        if costed
        else "FLOPs and bytes counted per page by the timing pass (run records' counted_work)"
    )
    lines = [
        "# Static compute",
        "",
        f"dtype {report['dtype']} ({report['bytes_per_element']} bytes per element); {shapes}.",
        "",
        "## Parameters",
        "",
        "| part | parameters |",
        "|---|---:|",
    ]
    lines += [f"| {part} | {count:,} |" for part, count in report["params"].items()]
    if costed:
        lines += [
            "",
            "## FLOPs per stage (GFLOP; analytic vs counted)",
            "",
            CAUSAL_NOTE,
            "",
            "| stage | analytic | FlopCounterMode | fvcore x2 | diff FCM | diff fvcore "
            "| weights (GB) | activations (GB) | KV (GB) | necessary bytes (GB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for name, entry in report["stages"].items():
        lines.append(
            f"| {name} | {_giga(entry['analytic'])} | {_giga(entry['flopcountermode'])} "
            f"| {_giga(entry['fvcore'])} | {_percent(entry['rel_diff_flopcountermode'])} "
            f"| {_percent(entry['rel_diff_fvcore'])} | {_giga(entry['weight_bytes'])} "
            f"| {_giga(entry['activation_bytes'])} | {_giga(entry['kv_bytes'])} "
            f"| {_giga(entry['necessary_bytes'])} |"
        )
    notes = [note for name, e in report["stages"].items() if (note := _gap_note(name, e))]
    if notes:
        lines += ["", f"## Gaps above {100 * AGREEMENT_TOLERANCE:g}%", "", *notes]
    lines += ["", "## Conventions", "", *(f"- {c}" for c in report["conventions"]), ""]
    return "\n".join(lines)

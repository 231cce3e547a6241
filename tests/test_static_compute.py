"""The static compute report: layout, agreement of counts, explained gaps, Markdown."""

from __future__ import annotations

import json

import pytest

from vlmprof.flops import analytic
from vlmprof.flops.static_compute import (
    AGREEMENT_TOLERANCE,
    build_static_compute,
    mean_decode_context,
    report_view_sizes,
    static_compute_markdown,
)
from vlmprof.models.deepseek_ocr.dims import PRESETS

SMALL = PRESETS["small"]
FULL = PRESETS["full"]


@pytest.fixture(scope="module")
def small_report() -> dict:
    return build_static_compute(SMALL, ["gundam", "tiny"], 140, 170, "bfloat16")


def test_view_sizes_always_include_base_and_crop() -> None:
    assert report_view_sizes(["tiny"]) == [1024, 640, 512]
    assert report_view_sizes(["large", "gundam"]) == [1280, 1024, 640]


def test_small_report_layout(small_report: dict) -> None:
    report = json.loads(json.dumps(small_report))
    assert set(report["params"]) >= {
        "sam",
        "clip",
        "projector",
        "decoder_total",
        "decoder_active_per_token",
        "total",
    }
    assert set(report["flops"]) == {"view_1024", "view_640", "view_512"}
    assert set(report["flops"]["view_640"]) == {"sam", "clip", "projector"}
    expected_stages = {
        f"{part}_{size}" for part in ("sam", "clip", "projector") for size in (1024, 640, 512)
    } | {"vision_gundam", "vision_tiny", "llm_prefill", "decode_step"}
    assert set(report["stages"]) == expected_stages
    keys = {
        "analytic",
        "flopcountermode",
        "fvcore",
        "rel_diff_flopcountermode",
        "rel_diff_fvcore",
        "params",
        "weight_bytes",
        "activation_bytes",
        "kv_bytes",
        "necessary_bytes",
    }
    for entry in report["stages"].values():
        assert keys <= set(entry)
        assert entry["necessary_bytes"] == pytest.approx(
            entry["weight_bytes"] + entry["activation_bytes"] + entry["kv_bytes"]
        )
    assert report["dtype"] == "bfloat16"
    assert report["dims"] == json.loads(json.dumps(SMALL.to_dict()))
    assert report["stages"]["vision_gundam"]["n_crops"] == 6
    assert any("2 x multiply" in sentence for sentence in report["conventions"])


def test_small_report_counts_agree_or_gaps_are_explained(small_report: dict) -> None:
    for name, entry in small_report["stages"].items():
        assert abs(entry["rel_diff_flopcountermode"]) <= 0.01, name
        gap = entry["fvcore_gap"]
        if abs(entry["rel_diff_fvcore"]) > AGREEMENT_TOLERANCE:
            assert gap["explained"] and gap["blind_ops"], name
    assert small_report["fvcore_unsupported_ops"]["sam_1024"][
        "aten::scaled_dot_product_attention"
    ] == (SMALL.sam.depth)


def test_small_report_matches_analytic_costs(small_report: dict) -> None:
    stages = small_report["stages"]
    gundam = analytic.vision_cost(SMALL, "gundam", 6, 2)["vision"]
    assert stages["vision_gundam"]["analytic"] == gundam.flops
    assert stages["vision_gundam"]["weight_bytes"] == gundam.weight_bytes
    assert stages["llm_prefill"]["kv_bytes"] == analytic.llm_prefill_cost(SMALL, 140, 2).kv_bytes
    assert stages["decode_step"]["context_len"] == 170
    assert small_report["flops"]["view_1024"]["sam"] == stages["sam_1024"]["analytic"]


def test_markdown_has_every_stage_and_names_the_ops_behind_gaps(small_report: dict) -> None:
    text = static_compute_markdown(small_report)
    for name in small_report["stages"]:
        assert f"| {name} |" in text
    assert "`aten::scaled_dot_product_attention`" in text
    assert "NOT explained" not in text
    assert "## Conventions" in text
    # The causal convention is said where the FLOPs are shown.
    table = text.split("## FLOPs per stage")[1].split("| stage |")[0]
    assert "L(L+1)/2" in table and "necessary bytes" in table


def test_full_preset_analytic_report_without_counting() -> None:
    report = build_static_compute(FULL, ["gundam", "base"], 1000, 1500, "bfloat16", count=False)
    assert report["params"]["decoder_total"] == 2_934_734_080
    assert report["stages"]["sam_1024"]["flopcountermode"] is None
    assert report["flops"]["view_1024"]["sam"] == analytic.sam_cost(FULL, 1024, 2).flops
    assert report["stages"]["vision_gundam"]["image_tokens"] == 903
    assert "| decode_step |" in static_compute_markdown(report)


def test_the_decode_step_is_costed_halfway_through_the_generation() -> None:
    assert mean_decode_context(prefill_len=300, max_new_tokens=32) == 316
    assert mean_decode_context(prefill_len=300, max_new_tokens=1) == 300
    # A decode step's cost grows linearly with its context, so the step halfway through
    # costs the mean of the steps at either end of the generation.
    first, last = (analytic.decode_step_cost(SMALL, c, 2).flops for c in (300, 300 + 32))
    halfway = analytic.decode_step_cost(SMALL, mean_decode_context(300, 32), 2).flops
    assert halfway == pytest.approx((first + last) / 2)

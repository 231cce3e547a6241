"""Cost per page by model: entries read from each model's metrics.json, the cheapest named,
a model whose every page failed kept in the table but never the cheapest."""

from __future__ import annotations

import pytest

from vlmprof.metrics.document import MetricsDocument
from vlmprof.report.figures import models_figure
from vlmprof.report.models import cheapest_sentence, models_table, page_parts
from vlmprof.variants.models_comparison import compare_models


def metrics(name: str, gpu_ms: float | None, architecture: str | None = None) -> MetricsDocument:
    """The parts of a metrics.json the comparison reads."""
    resolved = {"name": name, "preset": "small"}
    if architecture:
        resolved["architecture"] = architecture
    costed = gpu_ms is not None
    return MetricsDocument.from_dict(
        {
            "config": {"resolved": resolved},
            "counts": {"images": 2, "images_failed": 0 if costed else 2},
            "inputs": [{"image_tokens": 100, "prefill_len": 110}, {"image_tokens": 50}],
            "aggregates": {"stage_ms": {"vision": {"mean": 4.0}} if costed else {}},
            "static": {"params": {"total": 3e9}},
            "peaks": {"reference": {"tflops": 989.0}},
            "mfu": {"per_stage": {"prefill": {"datasheet": 0.25}}} if costed else {},
            "mbu": {},
            "cost": {"output_tokens": 1000, "gpu_ms_per_page": gpu_ms},
        }
    )


def test_the_cheapest_model_is_named_against_the_dearest():
    comparison = compare_models(
        {
            "baseline": metrics("deepseek_ocr", 3000.0),
            "qwen": metrics("hf_vlm", 1000.0),  # the released default architecture
            "broken": metrics("hf_vlm", None, "got_ocr2"),
        }
    )
    assert comparison["cheapest"] == "qwen"
    entries = {e["name"]: e for e in comparison["models"]}
    assert entries["qwen"]["model"] == "hf_vlm: qwen2_5_vl"
    assert entries["broken"]["model"] == "hf_vlm: got_ocr2"
    assert entries["baseline"]["image_tokens"] == 75.0
    assert entries["baseline"]["prefill_len"] == 110.0  # the page without one is left out
    sentence = cheapest_sentence(comparison)
    assert "`qwen` (hf_vlm: qwen2_5_vl)" in sentence and "3.0x less than `baseline`" in sentence
    table = models_table(comparison)
    assert list(table.index) == ["baseline", "qwen", "broken"]
    assert table.loc["baseline", "prefill MFU (datasheet, %)"] == 25.0
    assert table.loc["broken", "pages (failed)"] == "2 (2)"
    assert "decode MBU (datasheet, %)" not in table.columns  # no model measured it


def test_no_model_costed_says_so():
    comparison = compare_models({"baseline": metrics("deepseek_ocr", None)})
    assert comparison["cheapest"] is None
    assert cheapest_sentence(comparison) == "No model was costed: no page ran."


def test_the_figure_splits_each_models_page_into_its_stages():
    def entry(name: str, vision: float | None, llm: float | None, token: float | None) -> dict:
        stage_ms = {"vision": vision, "llm_prefill": llm, "decode_per_token": token}
        return {"name": name, "stage_ms": stage_ms}

    comparison = {
        "output_tokens": 11,
        "models": [
            entry("baseline", 100.0, 50.0, 2.0),
            entry("small", 20.0, 10.0, 1.0),
            entry("every-page-failed", None, None, None),
        ],
    }
    ax = models_figure(page_parts(comparison), comparison["output_tokens"]).axes[0]
    widths: dict[str, float] = {}
    for bar, label in zip(ax.patches, ["small", "baseline"] * 3, strict=True):
        widths[label] = widths.get(label, 0.0) + bar.get_width()
    # vision + LLM prefill + 10 decode steps: the page's GPU time, in seconds.
    assert widths == pytest.approx({"baseline": 0.170, "small": 0.040})
    assert "11 output tokens" in ax.get_xlabel()

"""Cost per page by model: entries read from each model's metrics.json on its released and its
best path, the cheapest named, a model whose every page failed and a best path whose gate
failed kept in the table but never the cheapest."""

from __future__ import annotations

import pytest

from vlmprof.metrics.document import MetricsDocument
from vlmprof.report.figures import models_figure
from vlmprof.report.models import cheapest_sentence, models_table, page_parts
from vlmprof.variants.models_comparison import ModelPath, compare_models


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


def released(name: str, document: MetricsDocument) -> ModelPath:
    return ModelPath(name, "released", document)


def best(name: str, document: MetricsDocument, status: str, ratio: float) -> ModelPath:
    """A best path (graphed decode) and its gate verdict against its released path."""
    gate = {"status": status, "detail": "...", "code_path_ratio": ratio, "precision_ratio": None}
    return ModelPath(name, "best", document, {"decode": "cuda_graph"}, gate)


def test_the_cheapest_model_is_named_against_the_dearest():
    comparison = compare_models(
        [
            released("baseline", metrics("deepseek_ocr", 3000.0)),
            released("qwen", metrics("hf_vlm", 1000.0)),  # the released default architecture
            released("broken", metrics("hf_vlm", None, "got_ocr2")),
        ]
    )
    assert comparison["cheapest"] == comparison["cheapest_released"]
    assert comparison["cheapest"] == {"name": "qwen", "path": "released"}
    entries = {e["name"]: e for e in comparison["models"]}
    assert entries["qwen"]["model"] == "hf_vlm: qwen2_5_vl"
    assert entries["broken"]["model"] == "hf_vlm: got_ocr2"
    assert entries["baseline"]["image_tokens"] == 75.0
    assert entries["baseline"]["prefill_len"] == 110.0  # the page without one is left out
    sentence = cheapest_sentence(comparison)
    assert "`qwen` (hf_vlm: qwen2_5_vl) on its released path costs the least" in sentence
    assert "3.0x less than `baseline` (deepseek_ocr) on its released path" in sentence
    table = models_table(comparison)
    assert list(table.index) == ["baseline", "qwen", "broken"]
    assert table.loc["baseline", "prefill MFU (datasheet, %)"] == 25.0
    assert table.loc["broken", "pages (failed)"] == "2 (2)"
    assert "decode MBU (datasheet, %)" not in table.columns  # no model measured it
    # No best path profiled: no gate to show.
    assert "gate against its released path" not in table.columns


def test_a_best_path_counts_only_where_its_gate_passed():
    comparison = compare_models(
        [
            released("baseline", metrics("deepseek_ocr", 3000.0)),
            best("baseline", metrics("deepseek_ocr", 600.0), "failed", 4000.0),
            released("qwen", metrics("hf_vlm", 1000.0)),
            best("qwen", metrics("hf_vlm", 800.0), "passed", 1.1),
        ]
    )
    # The failed best path is the least GPU time of all, and computes another answer.
    assert comparison["cheapest"] == {"name": "qwen", "path": "best"}
    assert comparison["cheapest_released"] == {"name": "qwen", "path": "released"}
    entries = {(e["name"], e["path"]): e for e in comparison["models"]}
    assert not entries["baseline", "best"]["counted"] and entries["qwen", "best"]["counted"]
    assert entries["qwen", "best"]["of_released"] == 0.8
    assert entries["baseline", "best"]["gate"]["status"] == "failed"
    table = models_table(comparison)
    assert list(table.index) == [
        "baseline",
        "baseline, best path (gate failed)",
        "qwen",
        "qwen, best path",
    ]
    gate = table["gate against its released path"]
    assert gate["baseline, best path (gate failed)"].startswith("failed (largest error 4000x")
    assert gate["qwen, best path"] == "passed (largest error 1.10x the released path's)"
    assert table.loc["qwen, best path", "decode path"] == "decode cuda_graph"
    assert table.loc["qwen", "decode path"] == "released"
    sentence = cheapest_sentence(comparison)
    assert sentence.startswith(
        "At 1,000 output tokens a page, `qwen` (hf_vlm: qwen2_5_vl) on its best path (decode "
        "cuda_graph) costs the least GPU time per page: 800 ms, 3.8x less than `baseline`"
    )
    assert "On the released paths alone, `qwen` (hf_vlm: qwen2_5_vl) is the cheapest" in sentence
    assert "Not counted: the best path of `baseline`, which failed the correctness gate" in (
        sentence
    )


def test_no_model_costed_says_so():
    comparison = compare_models([released("baseline", metrics("deepseek_ocr", None))])
    assert comparison["cheapest"] is None
    assert cheapest_sentence(comparison) == "No model was costed: no page ran."


def test_the_figure_splits_each_models_page_into_its_stages():
    def entry(
        name: str, vision: float | None, llm: float | None, token: float | None, path="released"
    ) -> dict:
        stage_ms = {"vision": vision, "llm_prefill": llm, "decode_per_token": token}
        return {"name": name, "path": path, "counted": False, "stage_ms": stage_ms}

    comparison = {
        "output_tokens": 11,
        "models": [
            entry("baseline", 100.0, 50.0, 2.0),
            entry("small", 20.0, 10.0, 1.0, path="best"),
            entry("every-page-failed", None, None, None),
        ],
    }
    ax = models_figure(page_parts(comparison), comparison["output_tokens"]).axes[0]
    # Failed or not, each path's page is drawn, a failed gate in its name.
    small = "small, best path (gate failed)"
    assert [tick.get_text() for tick in ax.get_yticklabels()] == [small, "baseline"]
    widths: dict[str, float] = {}
    for bar, label in zip(ax.patches, [small, "baseline"] * 3, strict=True):
        widths[label] = widths.get(label, 0.0) + bar.get_width()
    # vision + LLM prefill + 10 decode steps: the page's GPU time, in seconds.
    assert widths == pytest.approx({"baseline": 0.170, small: 0.040})
    assert "11 output tokens" in ax.get_xlabel()

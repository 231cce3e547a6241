"""Models compared by cost per page through the real workflow on the CPU: DeepSeek-OCR (the
run's own), DeepSeek-OCR-2 and a transformers VLM (GOT-OCR-2.0), small presets, one `models:`
run, each model on its released path and on its best path (a static KV cache on the CPU),
gated against its own released path; the run's own model's best path is planted wrong (its
static KV cache passes the gate in tests/test_workflow_throughput.py's run). Every transformers VLM
architecture's own part of this (its counted work, its static compute, its best path against
its own float64 oracle) is checked in one process in tests/test_models_hf_vlm.py and
tests/test_page_work.py; the workflow's part is the same rules for each of them.

The run starts from a copy of the session's finished run and adds the models, so it also
shows that adding models leaves the baseline's jobs alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workflow_helpers import (
    FAST_CONFIG,
    checkout_of_run,
    run_with_more_arms,
    snakemake,
    write_config,
)
from vlmprof.flops import analytic
from vlmprof.models.deepseek_ocr2.dims import preset_dims

MODELS = {
    "ocr2": {"name": "deepseek_ocr2"},
    "got": {"name": "hf_vlm", "architecture": "got_ocr2"},
}
# The transformers VLMs among them: models without formulas.
HF_VLMS = [name for name, model in MODELS.items() if model["name"] == "hf_vlm"]
# A best path planted wrong (noise on its output head), whose gate must fail and which must
# then not count (tests/test_report_models.py plants one that costs least of all).
PLANTED = "baseline"
BEST_PATHS = {"switches": {PLANTED: {"perturb": 1.0}}}
# The gate's sample: each best path is judged on the first page, against its model's
# float64 oracle of that page (every page is gated in tests/test_workflow_variants.py).
GATE_PAGES = 1
MODEL_JOBS = {
    "static_flops",
    "profile_shard",
    "gate_oracle",
    "aggregate",
    "variant_gate",
    "compare_models",
    "render_notebook",
    "export_notebook",
    "report_figures",
    "publish",
    "all",
}


@pytest.fixture(scope="module")
def models_checkout(pipeline_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's workflow checkout with its finished baseline run."""
    return checkout_of_run(pipeline_run, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def models_run(models_checkout: Path) -> Path:
    """The same run with the models to compare."""
    required = {"static_flops", "profile_shard", "gate_oracle", "variant_gate", "compare_models"}
    more = {"models": MODELS, "best_paths": BEST_PATHS, "variant_gate": {"pages": GATE_PAGES}}
    return run_with_more_arms(models_checkout, more, MODEL_JOBS, required | {"aggregate"})


def _comparison(run: Path) -> dict[tuple[str, str], dict]:
    """models/comparison.json's entries by model and path."""
    comparison = json.loads((run / "models" / "comparison.json").read_text())
    return {(entry["name"], entry["path"]): entry for entry in comparison["models"]}


def _records(run: Path, model: str) -> list[dict]:
    path = run / "models" / model / "runs" / "shard-0.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_model_is_profiled_and_costed_on_both_paths_on_the_same_pages(models_run: Path):
    entries = _comparison(models_run)
    # The run's own model first, then the models in the config's order (here sorted, as
    # the test's config file was written), each best path after its released one.
    names = ["baseline", *sorted(MODELS)]
    assert list(entries) == [(name, path) for name in names for path in ("released", "best")]
    assert entries["got", "best"]["model"] == "hf_vlm: got_ocr2"
    pages = FAST_CONFIG["subset"]["n"]
    for (name, path), entry in entries.items():
        assert (entry["pages"], entry["pages_failed"]) == (pages, 0), name
        assert entry["image_tokens"] > 0 and entry["prefill_len"] > entry["image_tokens"], name
        assert all(ms > 0 for ms in entry["stage_ms"].values()), name
        assert 0 < entry["mfu_prefill"] < 1 and 0 < entry["mbu_decode"] < 1, name
        assert entry["cost"]["gpu_ms_per_page"] > 0 and entry["decode_tokens_per_s"] > 0, name
        released = entries[name, "released"]
        # Both paths do the same work on the same pages: only the decode path differs.
        assert entry["image_tokens"] == released["image_tokens"], name
        if path == "best":
            assert entry["of_released"] == pytest.approx(
                entry["cost"]["gpu_ms_per_page"] / released["cost"]["gpu_ms_per_page"]
            )
            best = models_run / "models" / name / "best"
            metrics = json.loads((best / "metrics.json").read_text())
            assert metrics["config"]["resolved"]["decode"] == "static", name
    # The architectures make different prompts of the same pages.
    assert len({entry["image_tokens"] for entry in entries.values()}) > 1


def test_each_best_path_is_gated_against_its_own_released_path(models_run: Path):
    entries = _comparison(models_run)
    for name in ["baseline", *MODELS]:
        gate = json.loads((models_run / "models" / name / "best" / "gate.json").read_text())
        assert gate["variant"] == f"{name}/best" and gate["pages"] == GATE_PAGES
        assert entries[name, "best"]["gate"]["status"] == gate["status"]
        reference = "the baseline" if name == "baseline" else f"`{name}`'s released path"
        assert gate["criterion"].startswith(f"fed {reference}'s tokens"), gate["criterion"]
        if name == PLANTED:
            # A wrong model fails with its measured difference.
            assert gate["status"] == "failed" and gate["code_path_ratio"] > 100, gate
            assert gate["code_path_ratio"] > gate["factors"]["code_path"]
            assert "largest logit error" in gate["detail"]
            continue
        # A static KV cache computes what the growing one does: float32 rounding apart.
        assert gate["status"] == "passed" and gate["code_path_ratio"] <= 10, (name, gate)
        # Judged against its own model's oracle (the released path in float64), not the
        # run's own model's.
        folder = "" if name == "baseline" else f"models/{name}/"
        assert (models_run / f"{folder}runs" / "shard-0.oracle.pt").is_file(), name


def test_the_cheapest_is_named_and_a_failed_best_path_never_is(models_run: Path):
    comparison = json.loads((models_run / "models" / "comparison.json").read_text())
    entries = _comparison(models_run)
    assert not entries[PLANTED, "best"]["counted"]
    assert all(entry["counted"] for key, entry in entries.items() if key != (PLANTED, "best"))
    counted = [entry for entry in entries.values() if entry["counted"]]
    cheapest = min(counted, key=lambda e: e["cost"]["gpu_ms_per_page"])
    assert comparison["cheapest"] == {"name": cheapest["name"], "path": cheapest["path"]}
    released = [entry for entry in counted if entry["path"] == "released"]
    cheapest = min(released, key=lambda e: e["cost"]["gpu_ms_per_page"])
    assert comparison["cheapest_released"] == {"name": cheapest["name"], "path": "released"}
    text = (models_run / "models" / "comparison.md").read_text()
    assert f"{PLANTED}, best path (gate failed)" in text
    assert f"Not counted: the best path of `{PLANTED}`, which failed the correctness gate" in text


def test_a_model_without_formulas_carries_its_counted_work(models_run: Path):
    for model in HF_VLMS:
        records = _records(models_run, model)
        assert all(r["status"] == "ok" for r in records)
        for record in records:
            work = record["counted_work"]
            assert "sam" not in work and work["clip"]["flops"] > 0, model
            assert work["prefill"]["flops"] == pytest.approx(
                work["vision"]["flops"] + work["llm_prefill"]["flops"]
            )
            # The next decode step reads one more cached position.
            assert work["decode_step_next"]["bytes"] > work["decode_step"]["bytes"]
        static = json.loads(
            (models_run / "models" / model / "static" / "static_compute.json").read_text()
        )
        assert static["stages"] == {} and static["params"]["total"] > 0
        metrics = json.loads((models_run / "models" / model / "metrics.json").read_text())
        # Its own model section, not the run's, is what its metrics say it ran.
        assert metrics["config"]["model"]["architecture"] == MODELS[model]["architecture"]
        said = " ".join(metrics["assumptions"])
        assert "counted over each page's own untimed run" in said
        assert "a few fixed token ids around the image tokens" in said
        assert metrics["mfu"]["per_stage"]["prefill"]["flops_total"] == pytest.approx(
            sum(r["counted_work"]["prefill"]["flops"] for r in records)
        )
    # A model with formulas takes its FLOPs and necessary bytes from them; the counted work
    # its records carry gives its bytes as implemented.
    ocr2 = [r for r in _records(models_run, "ocr2") if r["status"] == "ok"]
    metrics = json.loads((models_run / "models" / "ocr2" / "metrics.json").read_text())
    prefill = metrics["roofline"]["per_stage"]["prefill"]
    assert prefill["bytes_as_implemented_total"] == pytest.approx(
        sum(r["counted_work"]["prefill"]["bytes_as_implemented"] for r in ocr2)
    )
    assert prefill["bytes_necessary_total"] < prefill["bytes_as_implemented_total"]


def test_deepseek_ocr2_is_timed_stage_by_stage_and_costed_by_its_formulas(models_run: Path):
    records = _records(models_run, "ocr2")
    assert len(records) == FAST_CONFIG["subset"]["n"] * FAST_CONFIG["repeats"]
    assert all(r["status"] == "ok" for r in records)
    metrics = json.loads((models_run / "models" / "ocr2" / "metrics.json").read_text())
    assert metrics["config"]["resolved"]["name"] == "deepseek_ocr2"
    stages = metrics["aggregates"]["stage_ms"]
    for stage in ("prefill", "vision", "sam", "clip", "projector", "llm_prefill", "decode"):
        assert stages[stage]["mean"] > 0, stage
    vision = metrics["mfu"]["per_stage"]["vision"]
    assert vision["records"] == len(records) and vision["calibrated"] > 0
    float32_bytes = 4
    expected = sum(
        analytic.vision_cost(preset_dims("small"), r["mode"], r["n_crops"], float32_bytes)[
            "vision"
        ].flops
        for r in records
    )
    assert vision["flops_total"] == pytest.approx(expected)
    assert metrics["mfu"]["model_level"]["calibrated"] > 0
    assert "encoder" in metrics["static"]["params"]


@pytest.mark.parametrize(
    ("notebook", "heading"),
    [("report", "## Cost per page by model"), ("stakeholder_summary", "### By model")],
)
def test_both_notebooks_compare_the_models(models_run: Path, notebook: str, heading: str):
    text = (models_run / f"{notebook}.md").read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    assert "costs the least GPU time per page" in section
    assert "![png]" in section  # the figure of where each model spends a page
    for name in MODELS:
        assert name in section and f"{name}, best path" in section
    assert (models_run / "figures" / "models_figure.png").is_file()


def test_a_model_that_cannot_take_the_run_settings_is_refused_before_any_job(
    models_checkout: Path,
):
    config = write_config(
        models_checkout,
        {**FAST_CONFIG, "batch_size": 2, "models": {"got": MODELS["got"]}},
    )
    result = snakemake(models_checkout, "-n", "--configfile", str(config))
    assert result.returncode != 0
    assert "models.got: 2 pages at once are built for deepseek_ocr" in result.stderr

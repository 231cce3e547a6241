"""metrics.json and tables of a run, assembled from record files and written atomically."""

import json

import pandas as pd
import pytest

from tests.records import page_facts, page_record
from vlmprof.flops.static_compute import build_static_compute
from vlmprof.flops.work import WorkSource
from vlmprof.metrics.build import build_metrics, write_metrics
from vlmprof.metrics.document import Counts, Failure, MetricsDocument
from vlmprof.metrics.environment import collect_environment
from vlmprof.metrics.peaks import resolve_peaks
from vlmprof.models.deepseek_ocr.dims import preset_dims
from vlmprof.models.deepseek_ocr.views import plan_views
from vlmprof.placement import Placement
from vlmprof.provenance import config_hash
from vlmprof.records import RunRecord

DIMS = preset_dims("small")
PAGES = {"tiled": ("table", 1240, 1754), "plain": ("text", 600, 500)}
CONFIG = {
    "run_name": "unit",
    "model": {"seed": 0, "preset": "small"},
    "max_new_tokens": 9,
    "ignore_eos": True,
}


def write_shard(path, repeats=2):
    """One shard file: every page x repeat, plus one failed page."""
    lines = []
    for image_id, (_, width, height) in PAGES.items():
        crops = page_facts(width, height)["n_crops"]
        for repeat in range(repeats):
            record = page_record(
                image_id,
                (width, height),
                repeat,
                run_id="unit",
                tokens=9,
                prefill_ms=30.0 + crops,
                vision_ms=20.0 + crops,
                sam_ms=12.0,
                clip_ms=6.0,
                projector_ms=1.0,
                decode_ms=8.0,
                decode_step_ms=[1.0] * 8,
            )
            lines.append(json.dumps(record))
    failed = RunRecord(run_id="unit", image_id="huge", repeat=0, status="error", error="too big")
    lines.append(json.dumps(failed.to_dict()))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def built(tmp_path):
    return _build(write_shard(tmp_path / "shard-0.jsonl"))


def _build(shard):
    """metrics.json's content of one shard file on a CPU (small preset)."""
    inputs = pd.DataFrame(
        [
            {
                "image_id": i,
                "path": f"/data/{i}.png",
                "category": c,
                "width": w,
                "height": h,
                "sha256": "0" * 64,
                "source": "synthetic",
            }
            for i, (c, w, h) in {**PAGES, "huge": ("scan", 40000, 40000)}.items()
        ]
    )
    static = build_static_compute(
        DIMS, ["gundam"], prefill_len=300, decode_context=304, dtype="float32", count=False
    )
    peaks = resolve_peaks(
        "cpu", "float32", calibrated={"tflops": 0.1, "tbps": 0.01, "method": "m"}, env={}
    )
    return build_metrics(
        record_paths=[shard],
        static_compute=static,
        dims=DIMS,
        dtype="float32",
        peaks=peaks,
        environment=collect_environment(Placement("cpu", "float32"), "cpu"),
        inputs=inputs,
        config=CONFIG,
        context_len_mode="auto",
        context_len_fixed=None,
        tolerance=0.10,
    )


def test_metrics_have_every_section(built):
    metrics, _ = built
    # Every optional section is built; the timeline only with an operator pass.
    optional = ("roofline", "telemetry", "host", "cost")
    assert None not in (getattr(metrics, section) for section in optional)
    assert metrics.timeline is None
    assert metrics.run_name == "unit"
    assert metrics.counts == Counts(records=5, ok=4, error=1, images=3, images_failed=1, repeats=2)
    assert metrics.failures == [Failure(image_id="huge", repeat=0, error="too big")]
    assert metrics.config_hash == config_hash(CONFIG)
    assert metrics.work.source is WorkSource.FORMULAS
    assert metrics.static.params["total"] > 0
    assert set(metrics.static.per_view_flops["view_640"]) == {"sam", "clip", "projector"}
    assert metrics.mfu.per_stage["prefill"].datasheet is None
    assert metrics.mfu.model_level.calibrated > 0


def test_inputs_carry_manifest_and_view_facts(built):
    inputs = {row.image_id: row for row in built[0].inputs}
    assert inputs["tiled"].category == "table"
    assert inputs["tiled"].n_crops == plan_views(1240, 1754, "gundam").n_crops
    assert inputs["plain"].image_tokens == 273
    assert inputs["huge"].n_crops is None


def test_assumptions_state_what_the_numbers_rest_on(built):
    text = " ".join(built[0].assumptions)
    assert "random" in text and "stand-in tokenizer" in text
    assert "exactly 9 tokens" in text
    assert "no datasheet for CPUs" in text
    assert "0.1 TFLOP/s" in text
    assert "prefill_len + j" in text


def test_tables(built):
    _, tables = built
    assert set(tables) == {"stage_ms", "per_image", "per_category", "mfu", "mbu", "per_record"}
    assert list(tables["mfu"].index) == ["vision", "llm_prefill", "prefill", "decode", "model"]
    assert list(tables["mbu"].index) == ["prefill", "decode"]
    assert {"datasheet", "calibrated"} <= set(tables["mfu"].columns)
    assert tables["per_image"].loc["tiled", "category"] == "table"
    assert len(tables["per_record"]) == 4
    pages = tables["per_category"].groupby("category")[["ok pages", "failed pages"]].first()
    assert pages.to_dict("index") == {
        "scan": {"ok pages": 0, "failed pages": 1},
        "table": {"ok pages": 1, "failed pages": 0},
        "text": {"ok pages": 1, "failed pages": 0},
    }


def test_write_metrics_round_trips(built, tmp_path):
    metrics, tables = built
    write_metrics(metrics, tables, tmp_path / "metrics.json", tmp_path / "tables")
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text
    assert MetricsDocument.from_dict(json.loads(text)) == metrics
    stage_ms = pd.read_csv(tmp_path / "tables" / "stage_ms.csv", index_col="stage")
    assert stage_ms.loc["vision", "nested_in"] == "prefill"
    assert stage_ms.loc["prefill", "n"] == 4
    per_record = pd.read_csv(tmp_path / "tables" / "per_record.csv")
    assert len(per_record) == 4 and "decode mfu (calibrated)" in per_record.columns
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "mbu.csv",
        "mfu.csv",
        "per_category.csv",
        "per_image.csv",
        "per_record.csv",
        "stage_ms.csv",
    ]


def test_a_batch_size_that_did_not_fit_still_gives_metrics_that_say_so(tmp_path):
    """Every run of the shard out of memory (a batch too large, as the timing pass records
    it): metrics are built, counting the failures, with no figure computed from nothing."""
    oom = "OutOfMemoryError: CUDA out of memory. Tried to allocate 1.98 GiB."
    records = [
        RunRecord(
            run_id="unit",
            image_id=image_id,
            repeat=repeat,
            status="error",
            error=oom,
            batch_size=2,
            batch=0,
        ).to_dict()
        for image_id in PAGES
        for repeat in range(2)
    ]
    shard = tmp_path / "shard-0.jsonl"
    shard.write_text("".join(json.dumps(record) + "\n" for record in records))
    metrics, _ = _build(shard)
    assert metrics.counts.ok == 0 and metrics.counts.error == 4
    assert {failure.error for failure in metrics.failures} == {oom}
    assert metrics.aggregates.pages_per_s_gpu_side is None
    assert metrics.aggregates.pages_per_s_end_to_end is None
    assert metrics.aggregates.output_tokens_per_s_end_to_end is None
    assert metrics.aggregates.end_to_end is None
    assert metrics.cost.available is False
    assert metrics.mfu.reason == "no ok records"

"""Report sections: unit checks on small inputs, and the executed report of a real run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from vlmprof.metrics.document import MetricsDocument, Summary
from vlmprof.report import operators, quality, run, static_compute, timing
from vlmprof.report.formatting import format_number
from vlmprof.report.run import RunOutputs, load_run
from vlmprof.stages import STAGE_DEFINITIONS


def executed_outputs(path: Path) -> str:
    """All text an executed notebook shows (plain, HTML, Markdown), after checking that no
    cell raised or wrote to stderr."""
    notebook = nbformat.read(path, as_version=4)
    shown = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name}: {output.get('ename')}"
            if output["output_type"] == "stream":
                assert output["name"] != "stderr", f"{path.name}: stderr {output['text'][:500]}"
                shown.append(output["text"])
            for mime in ("text/plain", "text/html", "text/markdown"):
                shown.append(str(output.get("data", {}).get(mime, "")))
    text = "\n".join(shown)
    assert "Traceback" not in text
    return text


# --- unit checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (538.2050232, "538.21"),
        (1234.5, "1,234.50"),
        (0.1, "0.100"),
        (0.0123456, "0.0123"),
        (0.0, "0.00"),
        (7, "7"),
        (2e9, "2,000,000,000"),
        (float("nan"), "-"),
        (None, "-"),
        ("sam", "sam"),
    ],
)
def test_format_number(value, shown):
    assert format_number(value) == shown


def _stage_stats(**means: float) -> MetricsDocument:
    stage_ms = {k: {"mean": v} for k, v in means.items()}
    return MetricsDocument.from_dict({"aggregates": {"stage_ms": stage_ms}})


def test_prefill_split_parts_add_up_to_prefill():
    metrics = _stage_stats(
        prefill=100.0, vision=70.0, sam=50.0, clip=12.0, projector=3.0, decode=300.0
    )
    split = timing.prefill_split(metrics)
    assert split.loc["vision remainder", "mean (ms)"] == pytest.approx(5.0)
    assert split.loc["LLM prefill", "mean (ms)"] == pytest.approx(30.0)
    assert split["mean (ms)"].sum() == pytest.approx(100.0)
    assert split["share of prefill (%)"].sum() == pytest.approx(100.0)
    page = timing.page_split(metrics)
    assert page.loc["decode", "share (%)"] == pytest.approx(75.0)
    halves = timing.run_split(metrics)
    assert halves["share (%)"].tolist() == pytest.approx([25.0, 75.0])
    # The host's part leads the page where the run timed it.
    metrics.aggregates.stage_ms |= {"load": Summary(mean=20.0), "preprocess": Summary(mean=80.0)}
    page = timing.run_split(metrics)
    assert list(page.index) == ["image load", "preprocess", "prefill", "decode"]
    assert page["share (%)"].tolist() == pytest.approx([4.0, 16.0, 20.0, 60.0])
    whole = timing.end_to_end_split(metrics)
    assert list(whole.index)[:2] == ["image load", "preprocess"]
    assert whole["mean (ms)"].sum() == pytest.approx(500.0)
    assert whole.loc["decode", "share (%)"] == pytest.approx(60.0)


def test_stage_table_names_and_nests_stages_as_vlmprof_stages_does():
    stage_ms = pd.DataFrame(
        {"mean (ms)": 2.0, "std (ms)": 0.1, "cv": 0.05, "p50 (ms)": 2.0, "p90 (ms)": 2.1, "n": 4},
        index=pd.Index(["decode", "sam", "prefill", "unknown"], name="stage"),
    )
    table = timing.stage_timing_table(stage_ms).set_index("stage")
    assert list(table.index) == ["prefill", "SAM", "decode"]  # reading order, known stages
    assert table.loc["SAM", "nested in"] == "vision"
    assert table.loc["prefill", "nested in"] == "-"
    assert table.loc["SAM", "definition"] == STAGE_DEFINITIONS["sam"]
    assert table.loc["SAM", "CV (%)"] == pytest.approx(5.0)


def test_shards_table_lists_where_each_shard_ran():
    gpu = {"shard": 0, "device": "cuda:0", "gpu_index": 0, "gpu_uuid": "GPU-1a2b"}
    gpu |= {"gpu_name": "NVIDIA H100", "sm_clock_median_mhz": 1980.0, "telemetry_runs": 6}
    gpu |= {"mem_clock_median_mhz": 2619.0}
    cpu = {"shard": 1, "device": "cpu", "gpu_index": None, "gpu_uuid": None, "gpu_name": None}
    cpu |= {"sm_clock_median_mhz": None, "mem_clock_median_mhz": None, "telemetry_runs": 0}
    table = quality.shards_table(MetricsDocument.from_dict({"environment": {"shards": [gpu, cpu]}}))
    assert list(table.columns[:5]) == ["shard", "device", "GPU index", "GPU UUID", "GPU"]
    shown = table.map(format_number)
    assert shown.loc[0].tolist() == ["0", "cuda:0", "0", "GPU-1a2b", "NVIDIA H100"] + [
        "1,980",
        "2,619",
        "6",
    ]
    assert shown.loc[1].tolist() == ["1", "cpu", "-", "-", "-", "-", "-", "0"]
    assert quality.shards_table(MetricsDocument.from_dict({"environment": {}})).empty


def test_the_decode_slots_table_shows_static_batchings_cost():
    slots = {
        "output_length": "lognormal: mean 8, spread 0.5, seed 0, capped at 12",
        "target_tokens": {"n": 8, "mean": 6.75},
        "slot_steps": 74,
        "idle_slot_steps": 28,
        "idle_share": 28 / 74,
        "useful_tokens_per_s": 164.3,
        "slot_steps_per_s": 264.3,
    }
    metrics = MetricsDocument.from_dict({"aggregates": {"stage_ms": {}}, "decode_slots": slots})
    table = timing.decode_slots_table(metrics)["value"]
    assert table["idle share (%)"] == pytest.approx(100 * 28 / 74)
    assert (table["decode slot-steps"], table["idle slot-steps (page ended)"]) == (74, 28)
    assert table["mean length (tokens)"] == 6.75
    assert table["decode tokens/s, every slot-step"] == 264.3
    assert table["pages' lengths"].startswith("lognormal")
    older = MetricsDocument.from_dict({"aggregates": {"stage_ms": {}}})
    assert timing.decode_slots_table(older).empty


def test_missing_stage_names_the_key():
    with pytest.raises(KeyError, match="aggregates.stage_ms has no 'vision'"):
        timing.prefill_split(_stage_stats(prefill=1.0, decode=1.0))


def test_load_run_names_the_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="metrics.json: missing"):
        load_run(tmp_path)


def test_read_benchmarks(tmp_path: Path):
    (tmp_path / "profile_shard-0.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        "12.41\t0:00:12\t817.93\t1206.01\t701.68\t743.82\t0.16\t0.02\t89.86\t11.65\n"
    )
    (tmp_path / "render_report.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        "3.0\t0:00:03\t100.0\t1.0\t1.0\t1.0\t0\t0\t1\t1.0\n"
    )
    frame = run.read_benchmarks(sorted(tmp_path.glob("*.tsv")))
    shown = quality.benchmark_table(frame)
    assert shown["job"].tolist() == ["profile_shard-0"]
    assert shown.loc[0, "wall (s)"] == 12.41
    assert shown.loc[0, "peak RSS (MB)"] == 817.93


def test_static_crosscheck_verdicts():
    def entry(fcm, fv, explained):
        return {
            "analytic": 2e9,
            "flopcountermode": 2e9 * (1 + fcm),
            "fvcore": 2e9 * (1 + fv),
            "rel_diff_flopcountermode": fcm,
            "rel_diff_fvcore": fv,
            "fvcore_gap": {"rel_diff_after": 0.0 if explained else fv, "explained": explained},
        }

    static = {
        "stages": {
            "a": entry(0.0, 0.0, True),
            "b": entry(0.0, -0.5, True),
            "c": entry(0.0, -0.5, False),
            "d": entry(0.1, 0.0, True),
        }
    }
    table = static_compute.static_crosscheck(static)
    assert table["agrees"].tolist() == ["yes", "explained", "NO", "NO"]
    assert table.loc[1, "fvcore vs analytic (%)"] == pytest.approx(-50.0)
    assert table.loc[0, "analytic (GFLOP)"] == pytest.approx(2.0)


def test_the_counted_work_note_follows_the_named_source_of_the_work():
    formulas = MetricsDocument.from_dict({"work": {"source": "formulas"}})
    assert static_compute.counted_work_note(formulas) is None
    counted = MetricsDocument.from_dict({"work": {"source": "counted"}})
    assert "counted over one untimed run of that page" in static_compute.counted_work_note(counted)


def test_operator_categories_and_stage_shares():
    table = pd.DataFrame(
        {
            "operator": ["aten::mm", "aten::add", "aten::mm"],
            "category": ["dense_gemm", "elementwise", "moe"],
            "calls": [4, 2, 1],
            "total (ms)": [6.0, 2.0, 2.0],
            "self (ms)": [6.0, 2.0, 2.0],
            "share of stage": [0.75, 0.25, 1.0],
            "stage": ["sam", "sam", "decode"],
            "sam (ms)": [6.0, 2.0, 0.0],
            "decode (ms)": [0.0, 0.0, 2.0],
        }
    )
    categories = operators.operator_categories(table)
    assert categories.index[0] == "dense_gemm"
    assert categories["share (%)"].sum() == pytest.approx(100.0)
    assert categories.loc["dense_gemm", "share (%)"] == pytest.approx(60.0)
    shares = operators.operator_stage_share(table)
    assert shares.loc["dense_gemm", "sam"] == pytest.approx(75.0)
    assert shares.loc["moe", "decode"] == pytest.approx(100.0)
    top = operators.top_operators(table, n=2)
    assert top["self (ms)"].tolist() == [6.0, 2.0]
    assert top.loc[0, "stage"] == "SAM"


# --- a real run ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outputs(pipeline_run: Path) -> RunOutputs:
    return load_run(pipeline_run)


@pytest.mark.slow
def test_report_shows_the_runs_numbers(outputs: RunOutputs, pipeline_run: Path):
    shown = executed_outputs(pipeline_run / "report.ipynb")
    metrics = json.loads((pipeline_run / "metrics.json").read_text())
    stages = metrics["aggregates"]["stage_ms"]
    roofline = metrics["roofline"]["per_stage"]
    expected = [
        format_number(stages["prefill"]["mean"]),
        format_number(stages["decode"]["p90"]),
        format_number(100 * stages["sam"]["cv"]),
        format_number(stages["ttft"]["p99"]),
        format_number(stages["prefill"]["mean"] - stages["vision"]["mean"]),
        format_number(100 * metrics["mfu"]["per_stage"]["prefill"]["calibrated"]),
        format_number(100 * metrics["mbu"]["per_stage"]["decode"]["calibrated"]),
        format_number(100 * metrics["repeatability"]["stages"]["prefill"]["max_deviation"]),
        format_number(100 * metrics["timeline"]["decode"]["busy_fraction"]),
        format_number(roofline["sam"]["intensity_necessary"]),
        format_number(roofline["sam"]["bytes_as_implemented_per_run"] / 1e6),
        format_number(metrics["roofline"]["per_stage"]["llm_prefill"]["achieved_tflops"] * 1e3),
        metrics["config_hash"],
        metrics["environment"]["packages"]["torch"],
        metrics["peaks"]["calibrated"]["origin"],  # "measured" or "cached (age ...)"
    ]
    # Straight from the run's tables and files, not through vlmprof.report.
    per_image = pd.read_csv(pipeline_run / "tables" / "per_image.csv", index_col="image_id")
    first = per_image.index[0]
    expected.append(format_number(per_image.loc[first, "sam (ms)"]))
    expected.append(format_number(int(per_image.loc[first, "image_tokens"])))
    operators = pd.read_csv(pipeline_run / "ops" / "operators.csv")
    heaviest = operators.sort_values("self (ms)", ascending=False).iloc[0]
    expected += [heaviest["operator"], format_number(heaviest["self (ms)"])]
    bench = pd.read_csv(pipeline_run / "benchmarks" / "profile_shard-0.tsv", sep="\t")
    expected.append(format_number(float(bench.loc[0, "s"])))
    static = json.loads((pipeline_run / "static" / "static_compute.json").read_text())
    expected.append(format_number(static["stages"]["llm_prefill"]["analytic"] / 1e9))
    missing = [value for value in expected if value not in shown]
    assert not missing, f"not shown in report.ipynb: {missing}"
    assert "device: auto fell back to CPU" in shown
    assert "These are CPU timings" in shown
    if metrics["failures"]:
        failure = metrics["failures"][0]
        path = outputs.subset.set_index("image_id").loc[failure["image_id"], "path"]
        assert failure["error"].replace(f"{path}: ", "") in shown
    else:
        assert "No failures" in shown

"""Stakeholder findings: the rules on chosen numbers, and the executed summary of a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.test_report_tables import executed_outputs
from vlmprof.metrics.document import Counts, EndToEnd, MetricsDocument, Summary
from vlmprof.report import findings, sentences
from vlmprof.report.formatting import format_number, percent
from vlmprof.report.quality import run_config_yaml
from vlmprof.report.variants import gate_table


def _metrics(
    prefill: float = 100.0,
    vision: float = 60.0,
    sam: float = 40.0,
    decode: float = 50.0,
    decode_mbu: float = 0.3,
    prefill_mfu: float = 0.5,
    decode_verdict: str = "compute/memory-bound",
    device: str = "cuda:0",
    repeatable: bool = True,
    errors: int = 0,
    experts: str = "grouped_mm",
) -> MetricsDocument:
    """The parts of metrics.json the summary reads, with chosen values."""
    stage = {
        "prefill": prefill,
        "vision": vision,
        "sam": sam,
        "clip": (vision - sam) * 0.8,
        "projector": (vision - sam) * 0.2,
        "decode": decode,
    }
    data = {
        "aggregates": {
            "stage_ms": {k: {"mean": v} for k, v in stage.items()},
            "tokens": {"mean": 32.0},
            "decode_tokens_per_s": 600.0,
        },
        "counts": {
            "images": 2,
            "repeats": 3,
            "ok": 6 - errors,
            "error": errors,
            "records": 6,
            "images_failed": min(errors, 1),  # the errors are repeats of one page
        },
        "environment": {"device_used": device, "gpu_name": "NVIDIA H100 80GB HBM3"},
        "peaks": {
            "reference": {"tflops": 989.0, "tbps": 3.35, "reason": None},
            "calibrated": {"tflops": 700.0, "tbps": 2.9, "reason": None},
        },
        "mfu": {
            "per_stage": {
                s: {"datasheet": prefill_mfu, "calibrated": prefill_mfu * 1.4}
                for s in ("prefill", "vision", "llm_prefill")
            }
        },
        "mbu": {"per_stage": {"decode": {"datasheet": decode_mbu, "calibrated": decode_mbu * 1.2}}},
        "timeline": {
            "decode": {"busy_fraction": 0.3, "mean_kernel_us": 8.0, "verdict": decode_verdict}
        },
        "repeatability": {
            "pass": repeatable,
            "tolerance": 0.1,
            "failing_stages": [] if repeatable else ["decode"],
        },
        "config": {"model": {"experts_implementation": experts}},
        "config_hash": "ab" * 32,
    }
    return MetricsDocument.from_dict(data)


def _rules(metrics: MetricsDocument, operators: pd.DataFrame | None = None) -> list[str]:
    centres = findings.cost_centres(metrics, operators)
    return [r.rule for r in findings.recommendations(metrics, operators, centres)]


def variant_words(comparison: dict | None) -> list[str]:
    """The summary's sentences on a variant comparison."""
    return sentences.variant_sentences(findings.variant_findings(comparison))


def test_percent():
    assert percent(0.3648) == "36.5%"
    assert percent(0.00012) == "0.012%"
    assert percent(0.0) == "0.0%"


def test_decode_bound_rule_follows_share_and_bandwidth():
    assert "decode-bound, bandwidth idle" in _rules(_metrics(decode=300.0, decode_mbu=0.05))
    # Same share, bandwidth well used: no batching advice.
    assert "decode-bound, bandwidth idle" not in _rules(_metrics(decode=300.0, decode_mbu=0.5))
    # Bandwidth idle but decode is a small share of the page.
    assert "decode-bound, bandwidth idle" not in _rules(_metrics(decode=50.0, decode_mbu=0.05))


def test_launch_bound_rule_reads_the_timeline_verdict():
    assert "decode launch-bound" in _rules(_metrics(decode_verdict="launch-bound"))
    assert "decode launch-bound" not in _rules(_metrics())


def test_sam_rule_needs_sam_to_dominate_vision():
    assert "SAM dominates vision" in _rules(_metrics(vision=60.0, sam=40.0))
    assert "SAM dominates vision" not in _rules(_metrics(vision=60.0, sam=20.0))


def test_prefill_and_quality_rules():
    fired = _rules(_metrics(prefill=400.0, vision=100.0, sam=40.0, prefill_mfu=0.1))
    assert {"LLM prefill dominates prefill", "prefill leaves compute idle"} <= set(fired)
    fired = _rules(_metrics(device="cpu", repeatable=False, errors=2))
    assert {"CPU run", "timings not repeatable", "failed pages"} <= set(fired)


def test_no_rule_fired_says_so():
    assert _rules(_metrics(vision=60.0, sam=20.0)) == ["no rule fired"]


def test_cost_centres_weight_operator_shares_by_measured_stage_time():
    metrics = _metrics(prefill=100.0, vision=60.0, sam=40.0, decode=100.0)
    operators = pd.DataFrame(
        {
            "operator": ["aten::sdpa", "aten::copy_", "aten::mm"],
            "category": ["attention", "copies", "moe"],
            "sam (ms)": [30.0, 10.0, 0.0],
            "clip (ms)": [1.0, 1.0, 0.0],
            "projector (ms)": [0.0, 1.0, 0.0],
            "llm_prefill (ms)": [2.0, 0.0, 2.0],
            "decode (ms)": [0.0, 1.0, 3.0],
        }
    )
    centres = findings.cost_centres(metrics, operators)
    # moe: half of LLM prefill (40 ms of 200) + 3/4 of decode (100 of 200).
    moe = next(c for c in centres if c.name == "moe")
    assert moe.share == pytest.approx(0.5 * 0.2 + 0.75 * 0.5)
    assert moe.stage == "decode"
    assert moe.lead_operator == "aten::mm"
    assert centres[0] == moe
    attention = next(c for c in centres if c.name == "attention")
    assert attention.share == pytest.approx(0.75 * 0.2 + 0.5 * 0.08 + 0.5 * 0.2)
    assert attention.stage == "SAM"
    assert "moe" in sentences.cost_centre_table(centres)["cost centre"].tolist()


def test_cost_centres_without_operator_pass_are_stage_parts():
    metrics = _metrics(prefill=100.0, vision=60.0, sam=45.0, decode=100.0)
    centres = findings.cost_centres(metrics, None)
    assert [c.name for c in centres] == ["decode", "SAM", "LLM prefill"]
    assert centres[0].share == pytest.approx(0.5)


def test_utilisation_words_use_datasheet_when_known():
    use = findings.utilisation_findings(_metrics(decode_mbu=0.05, decode_verdict="launch-bound"))
    words = " ".join(sentences.utilisation_sentences(use))
    assert "Decode moves 5.0% of the memory bandwidth the card offers (3.35 TB/s)" in words
    assert "launch-bound per the timeline" in words


def test_failures_are_counted_in_pages_and_records():
    metrics = _metrics(errors=2)
    metrics.counts = Counts(records=32, ok=22, error=10, images=16, images_failed=5, repeats=3)
    phrase = "5 of 16 pages failed (10 of 32 records)"
    assert sentences.failed_phrase(metrics.counts) == phrase
    assert phrase in sentences.headline(metrics)
    assert phrase in sentences.reliability_sentence(metrics)
    found = findings.recommendations(metrics, None, findings.cost_centres(metrics, None))
    assert phrase in sentences.evidence(next(r for r in found if r.rule == "failed pages"))
    assert sentences.failed_phrase(_metrics().counts) == "all 6 records ok"


def test_a_run_without_ok_records_still_has_its_sentences():
    metrics = _metrics(errors=6)
    metrics.aggregates.stage_ms = {}
    assert sentences.headline(metrics) == (
        "No page was timed: 2 pages x 3 repeats, 1 of 2 pages failed (6 of 6 records). "
        "The engineering report lists why each one failed."
    )
    assert findings.cost_centres(metrics, None) == []
    assert _rules(metrics) == ["failed pages"]


def _per_category(prefill: dict[str, float | None], decode: float = 50.0) -> pd.DataFrame:
    """tables/per_category.csv with these prefill means per category (None: no ok page)."""
    rows = []
    for category, mean in prefill.items():
        for stage, value in (("prefill", mean), ("decode", None if mean is None else decode)):
            rows.append(
                {
                    "category": category,
                    "stage": stage,
                    "mean (ms)": value,
                    "cv": 0.01,
                    "n": 0 if value is None else 3,
                    "ok pages": 0 if value is None else 1,
                    "failed pages": 1 if value is None else 0,
                }
            )
    return pd.DataFrame(rows)


def test_category_sentence_names_the_widest_gap_beyond_the_tolerance():
    table = _per_category({"book": 140.0, "slides": 100.0, "note": 120.0, "exam": None})
    assert sentences.category_sentence(findings.category_gap(table, 0.10)) == (
        "Pages of category `book` take 1.40x as long as those of `slides` in prefill "
        "(140.00 ms against 100.00 ms on average), more than the +/-10.0% repeats of one "
        "page may differ by: the mix of pages moves the averages above."
    )
    assert findings.category_gap(table, 0.50) is None
    assert findings.category_gap(_per_category({"book": 140.0, "exam": None}), 0.1) is None


def _comparison(variant_ok: int, stages: list[str]) -> dict:
    """A comparison of the baseline with a sweep point that timed `variant_ok` records."""
    entry = {"gate": None, "switches": {}, "records_error": 0}
    return {
        "variants": [
            entry | {"name": "baseline", "status": "baseline", "records_ok": 4},
            entry
            | {
                "name": "crops2",
                "status": "not_applicable",
                "switches": {"max_crops": 2},
                "records_ok": variant_ok,
                "records_error": 4 - variant_ok,
            },
        ],
        "stages": stages,
        "rows": [],
        "best": {},
        "how_to_add": "name them",
    }


def test_a_variant_without_ok_records_is_named_not_dropped():
    words = variant_words(_comparison(0, ["prefill", "decode"]))
    assert words[-1] == (
        "`crops2` (`max_crops: 2`) timed no page: all 4 of its records failed (their reasons "
        "are in `variants/crops2/runs/`)."
    )
    table = gate_table(_comparison(0, ["prefill"])).set_index("variant")
    assert table.loc["crops2", "records ok / failed"] == "0 / 4"
    assert variant_words(_comparison(4, [])) == [
        "No page of the baseline was timed (every page failed): nothing to compare."
    ]


def test_run_config_yaml_drops_resolved_facts():
    config = {"run_name": "x", "repeats": 2, "resolved": {"preset": "small"}}
    metrics = MetricsDocument.from_dict({"config": config})
    assert run_config_yaml(metrics) == "repeats: 2\nrun_name: x\n"


# --- a real run ----------------------------------------------------------------------------


@pytest.mark.slow
def test_stakeholder_summary_shows_the_runs_numbers(pipeline_run: Path):
    shown = executed_outputs(pipeline_run / "stakeholder_summary.ipynb")
    metrics = json.loads((pipeline_run / "metrics.json").read_text())
    stages = metrics["aggregates"]["stage_ms"]
    page_ms = stages["prefill"]["mean"] + stages["decode"]["mean"]
    # Top cost centre recomputed from the tables: operator shares per stage weighted by
    # each stage's share of measured time.
    operators = pd.read_csv(pipeline_run / "ops" / "operators.csv")
    sub = {s: stages[s]["mean"] for s in ("sam", "clip", "projector")}
    weight = {**sub, "llm_prefill": stages["prefill"]["mean"] - sum(sub.values())}
    weight["decode"] = stages["decode"]["mean"]
    by_category = operators.groupby("category")[[f"{s} (ms)" for s in weight]].sum()
    estimated = sum(
        by_category[f"{s} (ms)"] / by_category[f"{s} (ms)"].sum() * ms / page_ms
        for s, ms in weight.items()
    )
    top = estimated.idxmax()
    expected = [
        f"{page_ms:,.2f} ms",
        f"{stages['decode']['mean']:,.2f} ms",
        top,
        percent(estimated[top]),
        percent(metrics["mfu"]["per_stage"]["prefill"]["calibrated"]),
        percent(metrics["mbu"]["per_stage"]["decode"]["calibrated"]),
        # The busy fraction against the timed decode step, not the profiler pass's own.
        percent(metrics["timeline"]["decode"]["busy_fraction_timed"]),
        "kernel time from the profiler pass over the timing pass's stage time",
        metrics["config_hash"][:12],
        "snakemake --cores 1 --resources gpu=1 --configfile run-config.yaml",
        # The headline: output tokens/s end to end, the processor's and decode's beside it.
        f"the run generated {metrics['aggregates']['output_tokens_per_s_end_to_end']:,.2f} "
        "output tokens/s",
        f"{metrics['aggregates']['output_tokens_per_s_gpu_side']:,.2f} output tokens/s on the "
        "processor alone",
        # A page of 1,000 tokens from the measured wall time end to end, in CPU-days.
        f"about {format_number(round(metrics['cost']['pages_per_gpu_day']))} pages per CPU-day",
        "p90",
    ]
    cost = metrics["cost"]
    assert cost["processor"] == "CPU"
    assert cost["pages_per_gpu_day"] == pytest.approx(8.64e7 / cost["end_to_end_ms_per_page"])
    # The timed runs are shorter than 1,000 tokens: the page's run is longer than measured.
    wall = metrics["aggregates"]["end_to_end"]
    assert cost["end_to_end_ms_per_page"] > wall["device_s"] / wall["pages"] * 1000
    missing = [value for value in expected if value not in shown]
    assert not missing, f"not shown in stakeholder_summary.ipynb: {missing}"
    assert "These are CPU timings" in shown
    html = (pipeline_run / "stakeholder_summary.html").read_text()
    assert "load_run" not in html, "code cells leaked into the stakeholder page"


def test_the_headline_leads_with_the_end_to_end_rate_beside_the_gpu_side_and_decode():
    metrics = _metrics()
    aggregates = metrics.aggregates
    aggregates.output_tokens_per_s_end_to_end = 2017.5
    aggregates.pages_per_s_end_to_end = 7.88
    aggregates.output_tokens_per_s_gpu_side = 6473.6
    aggregates.end_to_end = EndToEnd(devices=1)
    assert sentences.headline(metrics).startswith(
        "On NVIDIA H100 80GB HBM3 (cuda:0): End to end, the run generated 2,017.50 output "
        "tokens/s (7.88 pages/s, the host's loading and preprocessing included); 6,473.60 "
        "output tokens/s on the GPU alone and 600.00 tokens/s in decode alone. One page takes"
    )
    aggregates.end_to_end = EndToEnd(devices=2)
    assert "included, 2 devices at once)" in sentences.headline(metrics)
    on_cpu = _metrics(device="cpu")
    on_cpu.aggregates.output_tokens_per_s_gpu_side = 40.0
    assert sentences.headline(on_cpu).startswith(
        "On NVIDIA H100 80GB HBM3 (cpu): No end-to-end rate: the records predate the "
        "host-clock spans it is measured from; 40.00 output tokens/s on the processor alone"
    )


def test_the_headline_adds_the_hosts_part_where_the_run_timed_it():
    metrics = _metrics()
    assert "on the host" not in sentences.headline(metrics)
    metrics.aggregates.stage_ms |= {"load": Summary(mean=35.0), "preprocess": Summary(mean=150.0)}
    assert ", after 185.00 ms on the host to load and preprocess it;" in sentences.headline(metrics)

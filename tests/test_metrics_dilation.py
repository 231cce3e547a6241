"""The profiler pass's timeline against the timing pass: dilation, busy fraction and launch
cost over the timed stage, from a recorded trace and timing records of the same page."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.records import page_record
from tests.test_operator_profile import small_cuda_trace
from tests.test_report_summary import _metrics
from vlmprof.metrics.aggregate import per_image_table
from vlmprof.metrics.dilation import NO_PAGES, against_timing_pass
from vlmprof.profiler.timeline import timeline_metrics, trace_stage_totals, with_pages
from vlmprof.report import findings, sentences

DECODE_STEPS = 2


def _timeline(page: str = "p") -> dict:
    """timeline.json of the operator pass over one page (`page`) on a GPU: sam 10 us of
    kernels in a 10 us window, LLM prefill 10 us of kernels in 40 us, decode (two steps) 10 us
    of kernels in 40 us, 2 us per launch call."""
    totals = trace_stage_totals(small_cuda_trace())
    return with_pages(
        timeline_metrics(totals, "cuda kernels"), {page: totals}, "cuda kernels", DECODE_STEPS
    )


def _timed(**times: object) -> pd.DataFrame:
    """tables/per_image.csv of two timed repeats of page "p" with `times` (ms)."""
    return per_image_table([page_record("p", (1240, 1754), repeat, **times) for repeat in (0, 1)])


# The timing pass ran the same page 2.5x faster than the profiler pass: sam in 0.004 ms,
# LLM prefill in 0.016 ms (prefill 0.020 with vision 0.004), decode steps of 0.008 ms.
TIMED = {
    "sam_ms": 0.004,
    "vision_ms": 0.004,
    "prefill_ms": 0.020,
    "decode_ms": 0.016,
    "decode_step_ms": [0.008, 0.008],
}


def test_dilation_and_busy_fraction_are_taken_against_the_timed_stage():
    timeline = against_timing_pass(_timeline(), _timed(**TIMED))
    decode = timeline["decode"]
    # Under the profiler: 10 us of kernels in a 40 us decode window, over two steps.
    assert decode["busy_fraction"] == pytest.approx(0.25)
    assert decode["verdict"] == "launch-bound"
    assert decode["run_unit"] == "decode step" and decode["timed_pages"] == 1
    assert decode["profiled_ms_per_run"] == pytest.approx(0.020)
    assert decode["timed_ms_per_run"] == pytest.approx(0.008)
    assert decode["kernel_ms_per_run"] == pytest.approx(0.005)
    assert decode["kernels_per_run"] == pytest.approx(1.0)
    assert decode["dilation"] == pytest.approx(2.5)
    assert decode["busy_fraction_timed"] == pytest.approx(0.625)
    assert decode["busy_fraction_capped"] is False
    # Busy above half of the timed step: the launch-bound reading does not survive here.
    assert decode["verdict_timed"] == "compute/memory-bound"
    assert decode["launch_overhead_us"] == pytest.approx(2.0)
    assert decode["launch_overhead_us_timed"] == pytest.approx(0.8)
    llm = timeline["llm_prefill"]
    assert llm["run_unit"] == "page"
    assert llm["dilation"] == pytest.approx(0.040 / 0.016)
    assert llm["busy_fraction_timed"] == pytest.approx(0.010 / 0.016)
    # Prefill adds its parts: 50 us profiled, 20 us of kernels, against 20 us timed.
    assert timeline["prefill"]["dilation"] == pytest.approx(2.5)
    assert timeline["prefill"]["busy_fraction_timed"] == pytest.approx(1.0)
    # The profiler's own figures stay as they were.
    assert {k: v for k, v in timeline["decode"].items() if k in _timeline()["decode"]} == (
        _timeline()["decode"]
    )


def test_a_busy_fraction_above_the_timed_stage_is_capped_and_says_so():
    # sam's 10 us of kernels against a sam timed at 5 us: twice the timed stage.
    timeline = against_timing_pass(_timeline(), _timed(**{**TIMED, "sam_ms": 0.005}))
    sam = timeline["sam"]
    assert sam["busy_fraction_timed"] == 1.0 and sam["busy_fraction_capped"] is True
    assert sam["dilation"] == pytest.approx(2.0)


def test_pages_the_timing_pass_did_not_time_give_a_note_not_a_figure():
    timeline = against_timing_pass(_timeline(page="other"), _timed(**TIMED))
    assert timeline["decode"]["timed_note"].startswith("no page of the operator pass was timed")
    assert "dilation" not in timeline["decode"]


def test_an_older_timeline_without_pages_is_kept_with_a_note():
    old = {stage: {k: v for k, v in e.items() if k != "pages"} for stage, e in _timeline().items()}
    timeline = against_timing_pass(old, _timed(**TIMED))
    assert timeline["decode"]["timed_note"] == NO_PAGES
    # Entries that are not stage figures pass through untouched.
    assert against_timing_pass({"busy_fraction": 0.5}, _timed(**TIMED)) == {"busy_fraction": 0.5}


def test_the_summary_quotes_the_timed_busy_fraction_and_how_it_was_obtained():
    metrics = _metrics(decode_mbu=0.05, decode_verdict="launch-bound")
    decode = metrics.timeline["decode"]
    decode.busy_fraction, decode.busy_fraction_timed, decode.dilation = 0.048, 0.11, 2.27
    decode.verdict_timed = "launch-bound"
    words = " ".join(sentences.utilisation_sentences(findings.utilisation_findings(metrics)))
    assert "busy 11.0% of the time, with kernels of 8.0 us on average; busy is kernel " in words
    assert "time from the profiler pass over the timing pass's stage time, and the " in words
    assert "the profiler pass ran 2.3x slower" in words and "4.8%" not in words
    rule = next(r for r in findings.recommendations(metrics, None, []) if "launch" in r.rule)
    evidence = sentences.evidence(rule)
    assert "busy 11.0% of decode time" in evidence
    assert "(busy is kernel time from the profiler pass over the timing pass's" in evidence

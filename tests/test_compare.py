"""Comparing two runs: identical runs pass, a slower stage fails by name, runs of other pages,
config or device are refused unless forced, host-only stages are shown but not judged, the
paired per-page test, CLI exit codes."""

import copy
import json

import numpy as np
import pandas as pd
import pytest

from vlmprof.compare import (
    HOST,
    NotComparableError,
    comparable_config_hash,
    compare_dirs,
    compare_runs,
    main,
    paired_pages,
    verdict,
)
from vlmprof.metrics.aggregate import aggregate_records, per_image_table
from vlmprof.metrics.build import input_rows
from vlmprof.metrics.document import MetricsDocument
from vlmprof.provenance import config_hash
from vlmprof.records import RunRecord
from vlmprof.variants.paired import MIN_PAGES, NOT_JUDGED, TOO_FEW_PAGES

PAGES = ("p1.png", "p2.png", "p3.png")
CONFIG = {
    "run_name": "a",
    "device": "auto",
    "repeats": 3,
    "dataset": {"source": "auto", "path": "resources/datasets/synthetic"},
    "resolved": {"preset": "small", "device": "cpu", "dtype": "float32"},
}
ENVIRONMENT = {"device_name": "cpu", "cpu_model": "AMD EPYC 9654", "device_used": "cpu"}


def records_of(scale_by_stage=None, pages=PAGES):
    """Run records of `pages` x 3 repeats, with chosen stage fields scaled."""
    scale_by_stage = scale_by_stage or {}
    records = []
    for number, image_id in enumerate(pages):
        for repeat in range(3):
            times = {
                "load_ms": 4.0 + number,
                "preprocess_ms": 9.0,
                "prefill_ms": 120.0 + repeat + 10 * number,
                "vision_ms": 70.0,
                "sam_ms": 45.0,
                "clip_ms": 22.0,
                "projector_ms": 3.0,
                "decode_ms": 31.0,
                "decode_step_ms": [1.0] * 31,
            }
            for stage, factor in scale_by_stage.items():
                times[stage] = (
                    [v * factor for v in times[stage]]
                    if stage == "decode_step_ms"
                    else (times[stage] * factor)
                )
            record = RunRecord(run_id="r", image_id=image_id, repeat=repeat, tokens=32, **times)
            records.append(record.to_dict())
    return records


def inputs_of(pages=PAGES):
    return pd.DataFrame(
        {"image_id": list(pages), "category": "text", "sha256": [f"sha-{p}" for p in pages]}
    )


def metrics_of(scale_by_stage=None, pages=PAGES):
    """A metrics.json-shaped dict from records, with chosen stage fields scaled."""
    records = records_of(scale_by_stage, pages)
    metrics = aggregate_records(records)
    metrics["mfu"] = {"per_stage": {"decode": {"datasheet": 0.01, "calibrated": 0.012}}}
    metrics["inputs"] = input_rows(inputs_of(pages), records)
    metrics["config"] = copy.deepcopy(CONFIG)
    metrics["config_hash"] = config_hash(CONFIG)
    metrics["environment"] = dict(ENVIRONMENT)
    return metrics


def document_of(scale_by_stage=None, pages=PAGES):
    """`metrics_of` as the typed document comparisons read."""
    return MetricsDocument.from_dict(metrics_of(scale_by_stage, pages))


def test_identical_runs_pass():
    a = document_of()
    df = compare_runs(a, copy.deepcopy(a))
    assert verdict(df) == "PASS"
    assert (df.loc[df["kind"] == "mean (ms)", "delta %"] == 0).all()
    assert "mfu decode (calibrated)" in df.index


def test_one_slower_stage_fails_by_name():
    df = compare_runs(document_of(), document_of({"sam_ms": 1.3}), tolerance=0.10)
    assert verdict(df) == "FAIL: sam"
    assert df.loc["sam", "delta %"] == pytest.approx(30.0)
    assert not df.loc["sam", "pass"]
    assert df.loc["clip", "pass"]


def test_tolerance_decides():
    slower = document_of({"sam_ms": 1.3})
    assert verdict(compare_runs(document_of(), slower, tolerance=0.35)) == "PASS"


def test_stage_missing_in_one_run_fails():
    b = document_of()
    del b.aggregates.stage_ms["projector"]
    assert verdict(compare_runs(document_of(), b)) == "FAIL: projector"


def test_host_stages_are_shown_but_judged_only_when_asked():
    slow_host = document_of({"load_ms": 3.0, "preprocess_ms": 2.0})
    df = compare_runs(document_of(), slow_host)
    assert verdict(df) == "PASS"
    assert list(df.index[df["kind"] == HOST]) == ["load", "preprocess"]
    assert df.loc["load", "delta %"] == pytest.approx(200.0)
    assert df.loc["load", "pass"] is None
    judged = compare_runs(document_of(), slow_host, include_host_stages=True)
    assert verdict(judged) == "FAIL: load, preprocess"


def write_run(folder, scale_by_stage=None, pages=PAGES, change=None):
    """A result folder: metrics.json (changed by `change`) and tables/per_image.csv."""
    metrics = metrics_of(scale_by_stage, pages)
    if change is not None:
        change(metrics)
    (folder / "tables").mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    per_image_table(records_of(scale_by_stage, pages)).to_csv(folder / "tables/per_image.csv")
    return folder


def test_compare_dirs_and_cli(tmp_path, capsys):
    a = write_run(tmp_path / "a")
    same = write_run(tmp_path / "same")
    slow = write_run(tmp_path / "slow", {"decode_ms": 1.3, "decode_step_ms": 1.3})
    assert compare_dirs(a, same, 0.1).verdict == "PASS"
    out = tmp_path / "table.md"
    assert main([str(a), str(slow), "--tolerance", "0.1", "--out", str(out)]) == 1
    text = out.read_text()
    assert text.rstrip().endswith("Verdict: FAIL: decode, decode_per_token")
    assert text.startswith("Comparable: same 3 pages (ids and sha256), same config")
    assert "same device (cpu (AMD EPYC 9654))" in text
    assert "| decode " in text
    assert "load, preprocess run on the host only: shown, not judged" in text
    assert "FAIL" in capsys.readouterr().out
    assert main([str(a / "metrics.json"), str(same)]) == 0


def test_cli_judges_host_stages_when_asked(tmp_path):
    a = write_run(tmp_path / "a")
    slow_load = write_run(tmp_path / "slow-load", {"load_ms": 2.0})
    assert main([str(a), str(slow_load)]) == 0
    assert main([str(a), str(slow_load), "--include-host-stages"]) == 1


def test_cli_missing_run_is_an_error(tmp_path, capsys):
    a = write_run(tmp_path / "a")
    assert main([str(a), str(tmp_path / "absent")]) == 2
    assert "metrics.json" in capsys.readouterr().err


def _other_sha(metrics):
    metrics["inputs"][1]["sha256"] = "sha-edited"


def _other_config(metrics):
    metrics["config"]["repeats"] = 5


def _other_device(metrics):
    metrics["environment"]["device_name"] = "NVIDIA H200"


REFUSALS = {
    "other-pages": (
        {"pages": ("p1.png", "p2.png", "p4.png")},
        "other pages (only in A: p3.png; only in B: p4.png)",
    ),
    "other-sha256": ({"change": _other_sha}, "other page contents (sha256 differs: p2.png)"),
    "other-config": ({"change": _other_config}, "other config (repeats 3 vs 5)"),
    "other-device": (
        {"change": _other_device},
        "other device (cpu (AMD EPYC 9654) vs NVIDIA H200)",
    ),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_runs_of_other_pages_config_or_device_are_refused_unless_forced(tmp_path, capsys, case):
    changes, reason = REFUSALS[case]
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", **changes)
    with pytest.raises(NotComparableError) as refused:
        compare_dirs(a, b)
    assert str(refused.value) == (
        f"cannot compare: {reason}; use --force (compare.force: true) to compare anyway"
    )
    assert main([str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {refused.value}\n"

    out = tmp_path / "forced.md"
    assert main([str(a), str(b), "--force", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith(f"Comparable: no, forced: {reason}.\n")
    assert text.rstrip().endswith("Verdict: PASS")


def test_every_difference_is_named_in_one_line(tmp_path):
    a = write_run(tmp_path / "a")

    def everything(metrics):
        _other_sha(metrics)
        _other_config(metrics)
        _other_device(metrics)

    b = write_run(tmp_path / "b", change=everything)
    with pytest.raises(NotComparableError, match="sha256 differs.*other config.*other device"):
        compare_dirs(a, b)
    assert "\n" not in str(pytest.raises(NotComparableError, compare_dirs, a, b).value)


def test_run_name_sections_naming_other_runs_and_the_cost_section_do_not_count(tmp_path):
    def renamed(metrics):
        metrics["config"] |= {
            "run_name": "b",
            "compare": {"baseline": "results/a"},
            "variants": {"grouped": {"experts": "grouped"}},
            "cost": {"output_tokens": 500, "gpu_hour_price": 2.5},
        }
        metrics["config_hash"] = config_hash(metrics["config"])

    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", change=renamed)
    b_config = json.loads((b / "metrics.json").read_text())["config"]
    assert config_hash(CONFIG) != config_hash(b_config)
    assert comparable_config_hash(CONFIG) == comparable_config_hash(b_config)
    assert compare_dirs(a, b).verdict == "PASS"


def test_a_run_without_inputs_is_refused(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", change=lambda metrics: metrics.pop("inputs"))
    with pytest.raises(NotComparableError, match="no profiled pages listed in run B's"):
        compare_dirs(a, b)


def test_paired_per_page_test_on_a_constructed_pair():
    pages = [f"p{i}" for i in range(10)]
    a_ms = np.arange(1.0, 11.0) * 10.0
    ratios = np.array([1.04, 1.06, 1.05, 1.07, 1.05, 1.06, 1.04, 1.05, 1.06, 1.05])
    per_a = pd.DataFrame({"image_id": pages, "decode (ms)": a_ms, "load (ms)": 1.0})
    per_b = pd.DataFrame({"image_id": pages, "decode (ms)": a_ms * ratios, "load (ms)": 1.0})
    # A page only one run measured is left out of the pairs.
    per_b.loc[len(per_b)] = {"image_id": "extra", "decode (ms)": 500.0, "load (ms)": 1.0}
    table = paired_pages(per_a.set_index("image_id"), per_b.set_index("image_id"))

    decode = table.loc["decode"]
    assert decode["pages"] == 10
    assert decode["B/A"] == pytest.approx((a_ms * ratios).sum() / a_ms.sum())
    # A ratio of totals is a weighted mean of the page ratios: its interval lies near them.
    assert 1.03 < decode["95% low"] < decode["B/A"] < decode["95% high"] < 1.08
    # Two runs have no A/A control: drift between them is not measured, nothing is judged.
    assert decode["reading"] == NOT_JUDGED
    load = table.loc["load"]
    assert (load["B/A"], load["95% low"], load["95% high"]) == (1.0, 1.0, 1.0)


def test_below_the_minimum_of_pages_there_is_no_interval():
    pages = [f"p{i}" for i in range(MIN_PAGES - 1)]
    per_a = pd.DataFrame({"image_id": pages, "decode (ms)": 10.0}).set_index("image_id")
    per_b = per_a * 0.84
    decode = paired_pages(per_a, per_b).loc["decode"]
    assert decode["B/A"] == pytest.approx(0.84)
    assert decode["reading"] == TOO_FEW_PAGES
    assert pd.isna(decode["95% low"]) and pd.isna(decode["95% high"])


def test_paired_test_reads_each_runs_per_page_table(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", {"prefill_ms": 1.02})
    comparison = compare_dirs(a, b)
    # 2% slower on every page: within the 10% tolerance, and the paired test sees it.
    assert comparison.verdict == "PASS"
    prefill = comparison.pages.loc["prefill"]
    assert prefill["pages"] == 3 and prefill["B/A"] == pytest.approx(1.02)
    # Three pages are too few for an interval: no reading of slower or faster.
    assert set(comparison.pages["reading"]) == {TOO_FEW_PAGES}
    assert main([str(a), str(b), "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "Paired per-page test" in text and f"| {TOO_FEW_PAGES} " in text
    assert "drift between them is not measured" in text

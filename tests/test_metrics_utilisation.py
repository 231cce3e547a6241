"""MFU and MBU: work per record from the analytic formulas, times from the records."""

import pytest

from tests.records import page_record
from vlmprof.flops.analytic import (
    bytes_per_element,
    decode_step_cost,
    decode_weight_share,
    experts_hit,
    llm_prefill_cost,
    vision_cost,
)
from vlmprof.metrics.peaks import resolve_peaks
from vlmprof.metrics.utilisation import roofline_section, utilisation
from vlmprof.models.deepseek_ocr.dims import preset_dims
from vlmprof.records import RunRecord

DIMS = preset_dims("small")
DTYPE = "bfloat16"
BPE = bytes_per_element(DTYPE)
TOKENS = 17
PEAKS = resolve_peaks(
    "NVIDIA H100 80GB HBM3",
    DTYPE,
    calibrated={"tflops": 800.0, "tbps": 3.0, "method": "test"},
    env={},
)


def record(image_id, size, repeat, prefill_ms, vision_ms, decode_ms):
    """An ok record of a page of `size` (width, height) in gundam mode."""
    return page_record(
        image_id,
        size,
        repeat,
        tokens=TOKENS,
        prefill_ms=prefill_ms,
        vision_ms=vision_ms,
        decode_ms=decode_ms,
        decode_step_ms=[decode_ms / (TOKENS - 1)] * (TOKENS - 1),
    )


RECORDS = [
    record("tiled", (1240, 1754), 0, 40.0, 25.0, 16.0),
    record("tiled", (1240, 1754), 1, 42.0, 26.0, 17.0),
    record("plain", (600, 500), 0, 12.0, 5.0, 15.0),
    RunRecord(run_id="r", image_id="broken", repeat=0, status="error", error="OOM").to_dict(),
]
OK = RECORDS[:3]


def expected_prefill_flops(r):
    vision = vision_cost(DIMS, r["mode"], r["n_crops"], BPE)["vision"].flops
    return vision, llm_prefill_cost(DIMS, r["prefill_len"], BPE).flops


def expected_auto_decode_flops(r):
    steps = range(1, r["tokens"])
    return sum(decode_step_cost(DIMS, r["prefill_len"] + j, BPE).flops for j in steps)


def test_model_level_time_is_prefill_plus_decode_never_plus_vision():
    mfu, _, per_record = utilisation(RECORDS, DIMS, PEAKS, DTYPE)
    model = mfu["model_level"]
    assert model["time_ms_total"] == pytest.approx(
        sum(r["prefill_ms"] + r["decode_ms"] for r in OK)
    )
    assert mfu["per_stage"]["prefill"]["time_ms_total"] == pytest.approx(
        sum(r["prefill_ms"] for r in OK)
    )
    assert list(per_record["model (ms)"]) == [r["prefill_ms"] + r["decode_ms"] for r in OK]
    assert list(per_record["llm_prefill (ms)"]) == [r["prefill_ms"] - r["vision_ms"] for r in OK]


def test_prefill_flops_are_vision_plus_llm_prefill():
    _, _, per_record = utilisation(OK, DIMS, PEAKS, DTYPE)
    for r, (_, row) in zip(OK, per_record.iterrows(), strict=True):
        vision, llm = expected_prefill_flops(r)
        assert row["vision flops"] == pytest.approx(vision)
        assert row["llm_prefill flops"] == pytest.approx(llm)
        assert row["prefill flops"] == pytest.approx(vision + llm)
        assert row["decode flops"] == pytest.approx(expected_auto_decode_flops(r))


def test_headline_is_summed_flops_over_summed_time():
    mfu, _, _ = utilisation(OK, DIMS, PEAKS, DTYPE)
    flops = sum(sum(expected_prefill_flops(r)) + expected_auto_decode_flops(r) for r in OK)
    seconds = sum(r["prefill_ms"] + r["decode_ms"] for r in OK) / 1000
    model = mfu["model_level"]
    assert model["achieved_tflops"] == pytest.approx(flops / seconds / 1e12)
    assert model["datasheet"] == pytest.approx(flops / seconds / 989e12)
    assert model["calibrated"] == pytest.approx(flops / seconds / 800e12)
    per_record = [
        (sum(expected_prefill_flops(r)) + expected_auto_decode_flops(r))
        / ((r["prefill_ms"] + r["decode_ms"]) / 1000)
        / 989e12
        for r in OK
    ]
    assert model["datasheet_mean_of_records"] == pytest.approx(sum(per_record) / len(OK))
    assert model["records"] == 3


def test_max_context_raises_decode_flops_and_mfu():
    auto, _, auto_rows = utilisation(OK, DIMS, PEAKS, DTYPE, context_len_mode="auto")
    longest, _, max_rows = utilisation(OK, DIMS, PEAKS, DTYPE, context_len_mode="max")
    assert max(r["prefill_len"] + r["tokens"] for r in OK) < DIMS.decoder.max_positions
    assert (max_rows["decode flops"] > auto_rows["decode flops"]).all()
    assert longest["per_stage"]["decode"]["datasheet"] > auto["per_stage"]["decode"]["datasheet"]
    assert longest["per_stage"]["prefill"] == auto["per_stage"]["prefill"]
    assert auto["by_context_mode"]["max"] == longest["per_stage"]["decode"]
    assert longest["by_context_mode"]["auto"] == auto["per_stage"]["decode"]
    assert "fixed" not in auto["by_context_mode"]


def test_fixed_context_needs_a_length_and_uses_it_for_every_step():
    with pytest.raises(ValueError, match="context_len_fixed"):
        utilisation(OK, DIMS, PEAKS, DTYPE, context_len_mode="fixed")
    with pytest.raises(ValueError, match="context_len_mode"):
        utilisation(OK, DIMS, PEAKS, DTYPE, context_len_mode="longest")
    mfu, _, rows = utilisation(
        OK, DIMS, PEAKS, DTYPE, context_len_mode="fixed", context_len_fixed=4096
    )
    step = decode_step_cost(DIMS, 4096, BPE).flops
    assert list(rows["decode flops"]) == pytest.approx([step * (TOKENS - 1)] * len(OK))
    assert mfu["by_context_mode"]["fixed"] == mfu["per_stage"]["decode"]


def test_cpu_has_calibrated_mfu_only():
    peaks = resolve_peaks(
        "cpu", "float32", calibrated={"tflops": 0.1, "tbps": 0.01, "method": "m"}, env={}
    )
    mfu, mbu, rows = utilisation(OK, DIMS, peaks, "float32")
    assert mfu["per_stage"]["prefill"]["datasheet"] is None
    assert mfu["per_stage"]["prefill"]["calibrated"] > 0
    assert mfu["peaks"]["datasheet"]["reason"]
    assert mbu["decode_roofline"]["ms_per_token_at_datasheet_bw"] is None
    assert rows["decode mfu (datasheet)"].isna().all()
    assert (rows["decode mfu (calibrated)"] > 0).all()


def test_decode_mbu_and_roofline():
    _, mbu, rows = utilisation(OK, DIMS, PEAKS, DTYPE)
    decode = mbu["per_stage"]["decode"]
    steps = sum(r["tokens"] - 1 for r in OK)
    decode_ms = sum(r["decode_ms"] for r in OK)
    assert decode["achieved_tbps"] == pytest.approx(
        rows["decode bytes necessary"].sum() / decode_ms * 1e3 / 1e12
    )
    assert decode["calibrated"] == pytest.approx(decode["achieved_tbps"] / 3.0)
    roofline = mbu["decode_roofline"]
    assert roofline["ms_per_token_measured"] == pytest.approx(decode_ms / steps)
    necessary = rows["decode bytes necessary"].sum()
    assert roofline["bytes_necessary_per_token"] == pytest.approx(necessary / steps)
    assert roofline["ms_per_token_at_calibrated_bw"] == pytest.approx(
        roofline["bytes_necessary_per_token"] / 3e12 * 1e3
    )
    # Decode reads at least the active weights of one step per token.
    assert roofline["bytes_necessary_per_token"] > decode_step_cost(DIMS, 1, BPE).weight_bytes
    assert mbu["per_stage"]["prefill"]["bytes_necessary_per_run"] > 0


def test_records_without_vision_time_still_give_prefill_mfu():
    no_vision = [dict(r, vision_ms=None) for r in OK]
    mfu, _, _ = utilisation(no_vision, DIMS, PEAKS, DTYPE)
    assert mfu["per_stage"]["vision"]["records"] == 0
    assert mfu["per_stage"]["vision"]["datasheet"] is None
    assert mfu["per_stage"]["prefill"]["records"] == 3


def test_ok_record_missing_facts_is_named():
    with pytest.raises(ValueError, match="prefill_len"):
        utilisation([dict(OK[0], prefill_len=None)], DIMS, PEAKS, DTYPE)


def test_no_ok_records():
    mfu, mbu, rows = utilisation(RECORDS[3:], DIMS, PEAKS, DTYPE)
    assert rows.empty
    assert mfu["reason"] == mbu["reason"] == "no ok records"


def test_roofline_of_each_stage_from_the_same_work_as_mfu_and_mbu():
    timed = [dict(r, sam_ms=0.5 * r["vision_ms"], clip_ms=2.0, projector_ms=0.5) for r in OK]
    mfu, mbu, rows = utilisation(timed, DIMS, PEAKS, DTYPE)
    roofline = roofline_section(rows, PEAKS)["per_stage"]
    for stage in ("vision", "llm_prefill", "prefill", "decode"):
        assert roofline[stage]["flops_total"] == pytest.approx(
            mfu["per_stage"][stage]["flops_total"]
        )
        assert roofline[stage]["achieved_tflops"] == pytest.approx(
            mfu["per_stage"][stage]["achieved_tflops"]
        )
    for stage in ("prefill", "decode"):
        assert roofline[stage]["bytes_necessary_total"] == pytest.approx(
            mbu["per_stage"][stage]["bytes_necessary_total"]
        )
        larger = max(mfu["per_stage"][stage]["calibrated"], mbu["per_stage"][stage]["calibrated"])
        assert roofline[stage]["calibrated"]["distance"] == pytest.approx(1 / larger)
    # SAM, CLIP and projector make up vision; vision and LLM prefill make up prefill.
    parts = sum(roofline[s]["flops_total"] for s in ("sam", "clip", "projector"))
    assert parts == pytest.approx(roofline["vision"]["flops_total"])
    halves = roofline["vision"]["bytes_necessary_total"]
    halves += roofline["llm_prefill"]["bytes_necessary_total"]
    assert halves == pytest.approx(roofline["prefill"]["bytes_necessary_total"])


def test_roofline_of_the_page_adds_the_prefill_and_decode_bounds():
    mfu, _, rows = utilisation(OK, DIMS, PEAKS, DTYPE)
    section = roofline_section(rows, PEAKS)
    bounds = sum(section["per_stage"][s]["datasheet"]["bound_ms"] for s in ("prefill", "decode"))
    page = section["model_level"]["datasheet"]
    assert page["distance"] == pytest.approx(mfu["model_level"]["time_ms_total"] / bounds)
    assert roofline_section(utilisation(RECORDS[3:], DIMS, PEAKS, DTYPE)[2], PEAKS) == {
        "reason": "no ok records"
    }


def test_a_page_of_a_batch_counts_its_share_of_the_time_and_of_the_weights():
    lone = OK[2]
    batched = {**lone, "batch_size": 4}
    mfu_lone, mbu_lone, rows_lone = utilisation([lone], DIMS, PEAKS, DTYPE)
    mfu, mbu, rows = utilisation([batched], DIMS, PEAKS, DTYPE)
    # The same FLOPs in a quarter of the time: four times the MFU.
    for stage in ("vision", "llm_prefill", "decode"):
        assert mfu["per_stage"][stage]["calibrated"] == pytest.approx(
            4 * mfu_lone["per_stage"][stage]["calibrated"]
        )
    assert rows.loc[0, "decode (ms)"] == pytest.approx(lone["decode_ms"] / 4)
    # Decode: four tokens per step hit more experts than one, fewer than four times as many.
    weights = decode_step_cost(DIMS, lone["prefill_len"], BPE).weight_bytes * (TOKENS - 1)
    saved = rows_lone.loc[0, "decode bytes necessary"] - rows.loc[0, "decode bytes necessary"]
    assert weights * 0.5 < saved < weights * 0.75
    assert "E (1 - (1 - k/E)^B)" in mbu["batching"] and "batching" not in mbu_lone
    assert mfu["batching"] == mbu["batching"]


def test_the_experts_a_batch_hits_grow_from_top_k_to_every_expert():
    k, experts = DIMS.decoder.experts_per_token, DIMS.decoder.routed_experts
    assert experts_hit(DIMS, 1) == pytest.approx(k)
    assert k < experts_hit(DIMS, 4) < 4 * k
    assert experts_hit(DIMS, 10_000) == pytest.approx(experts)
    assert decode_weight_share(DIMS, 1) == pytest.approx(1.0)


def counted(record: dict, clip: float, llm: float, step: float, growth: float) -> dict:
    """`record` as a model without formulas writes it: its page's counted work (bytes are
    a thousandth of the FLOPs here)."""
    work = {
        "clip": clip,
        "projector": 0.0,
        "vision": clip,
        "llm_prefill": llm,
        "prefill": clip + llm,
        "decode_step": step,
        "decode_step_next": step + growth,
    }
    return {**record, "counted_work": {k: {"flops": v, "bytes": v / 1e3} for k, v in work.items()}}


def test_a_model_without_formulas_takes_each_records_counted_work():
    records = [counted(OK[0], 5e11, 2e11, 1e9, 1e4), counted(OK[2], 1e11, 1e11, 1e9, 1e4)]
    mfu, mbu, per_record = utilisation(records, None, PEAKS, DTYPE)
    steps = TOKENS - 1
    # Step j costs the first counted step plus j times the growth per cached position.
    decode = steps * 1e9 + 1e4 * steps * (steps - 1) / 2
    assert list(per_record["decode flops"]) == pytest.approx([decode, decode])
    assert list(per_record["vision flops"]) == pytest.approx([5e11, 1e11])
    assert list(per_record["sam flops"]) == [0.0, 0.0]  # the model has no SAM
    assert mfu["per_stage"]["prefill"]["flops_total"] == pytest.approx(7e11 + 2e11)
    assert mbu["per_stage"]["decode"]["bytes_necessary_total"] == pytest.approx(2 * decode / 1e3)
    # Counted before bytes as implemented were: that column is empty, not zero.
    assert per_record["decode bytes as implemented"].isna().all()
    assert mbu["per_stage"]["decode"]["bytes_as_implemented_total"] is None
    # A fixed context: every step at that context, from the same two counted steps.
    fixed = utilisation(records, None, PEAKS, DTYPE, "fixed", 1000)[2]
    first_context = records[0]["prefill_len"] + 1
    assert fixed["decode flops"][0] == pytest.approx(steps * (1e9 + 1e4 * (1000 - first_context)))
    assert set(mfu["by_context_mode"]) == {"auto"}  # max needs the model's longest context
    with pytest.raises(ValueError, match="context_len_mode: max needs"):
        utilisation(records, None, PEAKS, DTYPE, "max")
    with pytest.raises(ValueError, match="has no counted_work; rerun"):
        utilisation(OK[:1], None, PEAKS, DTYPE)


def with_bytes_as_implemented(record: dict, per_stage: float, weights: float) -> dict:
    """`record` with the counted work a timing pass now keeps for every model: each stage's
    bytes as implemented (`per_stage`, of which `weights` read weights); the two decode steps
    differ by one cached position's growth (1e3 bytes)."""
    stages = ("sam", "clip", "projector", "vision", "llm_prefill", "prefill")
    work = {stage: {"bytes_as_implemented": per_stage} for stage in stages}
    work["decode_step"] = {"bytes_as_implemented": per_stage}
    work["decode_step_next"] = {"bytes_as_implemented": per_stage + 1e3}
    for values in work.values():
        values |= {"flops": 1.0, "bytes": 1.0, "weight_bytes_as_implemented": weights}
    return {**record, "counted_work": work}


def test_bytes_as_implemented_stand_beside_the_necessary_bytes_mbu_divides_by():
    counted = [with_bytes_as_implemented(r, 5e8, 1e8) for r in OK]
    mfu, mbu, rows = utilisation(counted, DIMS, PEAKS, DTYPE)
    _, plain_mbu, plain_rows = utilisation(OK, DIMS, PEAKS, DTYPE)
    # The necessary bytes, and so MBU, are the formulas' whatever the implementation moved.
    for stage, entry in plain_mbu["per_stage"].items():
        unchanged = {k: v for k, v in entry.items() if "as_implemented" not in k}
        assert unchanged.items() <= mbu["per_stage"][stage].items(), stage
    assert list(rows["decode bytes necessary"]) == list(plain_rows["decode bytes necessary"])
    # Prefill is vision plus LLM prefill, each as counted.
    assert list(rows["llm_prefill bytes as implemented"]) == [5e8] * 3
    assert list(rows["prefill bytes as implemented"]) == [1e9] * 3
    steps = TOKENS - 1
    decode = steps * 5e8 + 1e3 * steps * (steps - 1) / 2
    assert list(rows["decode bytes as implemented"]) == pytest.approx([decode] * 3)
    assert mbu["per_stage"]["decode"]["bytes_as_implemented_total"] == pytest.approx(3 * decode)
    roofline = roofline_section(rows, PEAKS)["per_stage"]["prefill"]
    assert roofline["bytes_as_implemented_total"] == pytest.approx(3e9)
    assert roofline["intensity_as_implemented"] == pytest.approx(roofline["flops_total"] / 3e9)
    assert mbu["decode_roofline"]["bytes_as_implemented_per_token"] == pytest.approx(
        decode / steps
    )
    assert "least any implementation" in mbu["bytes"]["necessary"]
    # One record without the count leaves the totals empty rather than partial.
    mixed = utilisation([*counted[:2], OK[2]], DIMS, PEAKS, DTYPE)[1]
    assert mixed["per_stage"]["prefill"]["bytes_as_implemented_total"] is None
    # A page of a batch of 4 counts a quarter of the weights its batch reads once.
    batched = utilisation([{**counted[2], "batch_size": 4}], DIMS, PEAKS, DTYPE)[2]
    assert batched.loc[0, "llm_prefill bytes as implemented"] == pytest.approx(5e8 - 0.75e8)

"""The ncu bytes check: ncu's --csv details output parsed into per-kernel DRAM bytes, its
failures named, and our bytes for the same page taken from the MBU's own model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import ncu_bytes  # noqa: E402
from ncu_bytes import (  # noqa: E402
    comparison,
    counter_problem,
    is_matmul_class,
    our_bytes,
    parse_ncu_csv,
)

from vlmprof.flops.analytic import decode_step_cost, llm_prefill_cost, vision_cost
from vlmprof.models import build_adapter
from vlmprof.models.base import ModelSpec
from vlmprof.models.deepseek_ocr.dims import PRESETS
from vlmprof.profiler.operators import STAGE_LABELS

HEADER = (
    '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream",'
    '"Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit",'
    '"Metric Value"'
)


def _row(kernel: int, name: str, metric: str, unit: str, value: str) -> str:
    fields = [
        str(kernel),
        "4242",
        "python3",
        "127.0.0.1",
        name,
        "1",
        "7",
        "(128, 1, 1)",
        "(1280, 1, 1)",
        "0",
        "9.0",
        "Command line profiler metrics",
        metric,
        unit,
        value,
    ]
    return ",".join(f'"{field}"' for field in fields)


GEMV = "void gemv<__nv_bfloat16, 128>(int, float const*, float*)"
SAMPLE = "\n".join(
    [
        "==PROF== Connected to process 4242 (/opt/torch/.venv/bin/python3)",
        '==PROF== Profiling "gemv" - 0: 0%....50%....100% - 1 pass',
        HEADER,
        _row(0, GEMV, "dram__bytes_read.sum", "byte", "134,217,728"),
        _row(0, GEMV, "dram__bytes_write.sum", "byte", "2,560"),
        '==PROF== Profiling "add" - 1: 0%....50%....100% - 1 pass',
        _row(1, "vectorized_add", "dram__bytes_write.sum", "Kbyte", "1.5"),
        _row(1, "vectorized_add", "dram__bytes_read.sum", "Mbyte", "3"),
        "==PROF== Disconnected from process 4242",
    ]
)


def test_the_details_csv_gives_each_kernels_bytes() -> None:
    kernels = parse_ncu_csv(SAMPLE)
    assert [(k.id, k.name) for k in kernels] == [(0, GEMV), (1, "vectorized_add")]
    assert (kernels[0].read, kernels[0].write) == (134_217_728, 2_560)
    assert (kernels[1].read, kernels[1].write) == (3e6, 1.5e3)


def test_output_without_a_table_has_no_kernels() -> None:
    assert parse_ncu_csv("==WARNING== No kernels were profiled.\n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_row(0, "k", "dram__bytes_read.sum", "byte", "12"), "no dram__bytes_write.sum"),
        (_row(0, "k", "dram__bytes_read.sum", "%", "12"), "not a byte unit"),
        (_row(0, "k", "dram__bytes_read.sum", "byte", "n/a"), "'n/a' is not a number"),
    ],
)
def test_a_broken_table_is_refused_with_its_row(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ncu_csv(f"{HEADER}\n{text}", "ncu-decode.csv")


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (
            "==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA "
            "GPU Performance Counters on the target device 0.",
            "may not read the GPU performance counters",
        ),
        ("==ERROR== Failed to initialize the profiler: LibraryNotLoaded", "LibraryNotLoaded"),
        ("==ERROR== The application returned an error code (1).", "returned an error code"),
    ],
)
def test_counter_failures_are_named(output: str, reason: str) -> None:
    assert reason in counter_problem(f"==PROF== Connected to process 1\n{output}\n")


def test_a_clean_run_has_no_problem() -> None:
    assert counter_problem(SAMPLE) is None


def test_check_stops_when_no_kernel_was_profiled(tmp_path: Path, capsys) -> None:
    (tmp_path / "ncu-decode.csv").write_text("==WARNING== No kernels were profiled.\n")
    assert ncu_bytes.main(["check", str(tmp_path), "decode"]) == 1
    assert "no kernel inside NVTX range vlmprof@decode/" in capsys.readouterr().err
    (tmp_path / "ncu-decode.csv").write_text(SAMPLE)
    assert ncu_bytes.main(["check", str(tmp_path), "decode"]) == 0


def _record(prefill_len: int = 912, tokens: int = 2) -> dict:
    return {
        "run_id": "ncu-bytes",
        "image_id": "page",
        "repeat": 0,
        "status": "ok",
        "mode": "gundam",
        "n_crops": 6,
        "prefill_len": prefill_len,
        "tokens": tokens,
        "prefill_ms": 200.0,
        "decode_ms": 40.0,
        "dtype": "bfloat16",
    }


def test_our_necessary_bytes_are_the_mbu_model_for_the_page() -> None:
    spec = ModelSpec(preset="full", device="cuda", dtype="bfloat16")
    found = our_bytes([_record()], spec)["necessary"]
    dims = PRESETS["full"]
    vision = vision_cost(dims, "gundam", 6, 2)["vision"]
    prefill = vision.necessary_bytes + llm_prefill_cost(dims, 912, 2).necessary_bytes
    assert found["prefill"] == pytest.approx(prefill)
    # The one decode step attends over the prompt and the first token.
    assert found["decode"] == pytest.approx(decode_step_cost(dims, 913, 2).necessary_bytes)
    assert 1.0e9 < found["decode"] < 1.5e9  # about the active weights in bf16
    parts = vision_cost(dims, "gundam", 6, 2)
    for part in ("sam", "clip", "projector"):
        assert found[part] == pytest.approx(parts[part].necessary_bytes)
    # vision, derived as the sum of its three ranges, is the model's vision bytes
    vision_parts = sum(found[part] for part in ("sam", "clip", "projector"))
    assert vision_parts == pytest.approx(parts["vision"].necessary_bytes)
    # A record without counted work has no bytes as implemented to compare with.
    assert our_bytes([_record()], spec)["as_implemented"]["prefill"] is None


def test_the_bytes_compared_with_ncu_are_those_counted_over_the_page_on_its_device(
    tmp_path: Path,
) -> None:
    ncu_bytes.main(["prepare", str(tmp_path), "--preset", "small", "--device", "cpu"])
    spec = ModelSpec(**json.loads((tmp_path / "spec.json").read_text()))
    counted = ncu_bytes.counted_page(tmp_path, spec)
    record = _record(prefill_len=counted_prefill_len(tmp_path, spec))
    found = our_bytes([{**record, "counted_work": counted}], spec)
    implemented, necessary = found["as_implemented"], found["necessary"]
    for name in ("prefill", "sam", "clip", "projector"):
        assert implemented[name] == pytest.approx(counted[name]["bytes_as_implemented"])
    for name in ("prefill", "sam", "clip"):
        assert implemented[name] > necessary[name]  # layout copies, norms, SAM's bias
    # The projector is one matmul: it moves exactly what it must.
    assert implemented["projector"] == pytest.approx(necessary["projector"])
    assert implemented["decode"] == pytest.approx(counted["decode_step"]["bytes_as_implemented"])


def counted_prefill_len(out: Path, spec: ModelSpec) -> int:
    """The prompt length of the page `prepare` wrote, as the model preprocesses it."""
    image = Image.open(out / "page.png").convert("RGB")
    return build_adapter(spec).preprocess(image).prefill_len


@pytest.mark.parametrize(
    ("name", "matmul"),
    [
        ("nvjet_tst_128x256_64x4_2x1_v_bz_coopA_NNT", True),
        ("void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_128x2>", True),
        ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc", True),
        (
            "fmha_cutlassF_bf16_aligned_64x128_rf_sm80(PyTorchMemEffAttention::AttentionKernel)",
            True,
        ),
        ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128>>", True),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add>", False),
        (
            "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16>",
            False,
        ),
        ("void at::native::elementwise_kernel<128, 4, direct_copy_kernel_cuda>", False),
    ],
)
def test_kernels_are_classed_by_name(name: str, matmul: bool) -> None:
    assert is_matmul_class(name) is matmul


def test_rows_compare_read_plus_write_with_ours() -> None:
    kernels = parse_ncu_csv(SAMPLE)
    ours = (kernels[0].read + kernels[0].write + kernels[1].read + kernels[1].write) / 1.05
    rows = comparison({"decode": kernels}, {"decode": ours}, {"decode": ours / 2}, cap=2)
    row = rows[0]
    assert row["kernels"] == 2 and row["capped"]
    assert row["difference"] == pytest.approx(0.05) and row["within 10%"]
    assert row["nvtx filter"] == "vlmprof@decode/"
    assert row["our necessary bytes"] == pytest.approx(ours / 2)
    assert "| decode | 2 (capped) |" in ncu_bytes.table_text(rows)
    assert row["ncu matmul-class bytes"] == kernels[0].read + kernels[0].write
    assert row["ncu other bytes"] == kernels[1].read + kernels[1].write


def test_vision_sums_its_parts_and_llm_prefill_is_prefill_minus_them() -> None:
    kernels = parse_ncu_csv(SAMPLE)
    parts = {"sam": kernels[1:], "clip": [], "projector": []}
    ours = {"prefill": 10e6, "sam": 3e6, "clip": 0.5e6, "projector": 0.5e6}
    rows = {
        row["range"]: row for row in comparison({"prefill": kernels, **parts}, ours, ours, None)
    }
    derived = rows["llm_prefill"]
    assert derived["kernels"] == 1 and derived["nvtx filter"] is None
    assert derived["ncu read+write bytes"] == pytest.approx(kernels[0].read + kernels[0].write)
    assert derived["ncu other bytes"] == pytest.approx(0.0)
    assert derived["our bytes as implemented"] == pytest.approx(6e6)
    assert derived["our necessary bytes"] == pytest.approx(6e6)
    vision = rows["vision"]
    assert vision["kernels"] == 1 and vision["our bytes as implemented"] == pytest.approx(4e6)


def test_a_derived_range_needs_every_term_profiled() -> None:
    kernels = parse_ncu_csv(SAMPLE)
    rows = comparison({"prefill": kernels, "sam": kernels[1:]}, {"prefill": 1e6}, {}, None)
    assert [row["range"] for row in rows] == ["prefill", "sam"]


def test_profiled_ranges_are_the_ranges_the_timing_pass_pushes() -> None:
    # ncu finds no kernel in a range nobody pushes (a "vision" range once failed on a GPU).
    assert set(ncu_bytes.RANGES) == set(STAGE_LABELS)
    assert not set(ncu_bytes.DERIVED) & set(STAGE_LABELS)


def test_prepare_writes_one_page_and_a_timing_command_per_range(tmp_path: Path) -> None:
    ncu_bytes.main(["prepare", str(tmp_path), "--preset", "small", "--device", "cpu"])
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert spec["experts_implementation"] == "grouped_mm" and spec["preset"] == "small"
    for name in ncu_bytes.RANGES:
        command = (tmp_path / f"timing-{name}.args").read_bytes().split(b"\0")
        settings = json.loads(command[4])
        assert command[1:3] == [b"-m", b"vlmprof.runtime.timing_cli"]
        assert settings["max_new_tokens"] == 2 and settings["nvtx"] and not settings["telemetry"]
        assert command[5].decode() == str(tmp_path / f"records-{name}.jsonl")
        assert command[6].decode() == f"page={tmp_path / 'page.png'}"


def test_the_script_stops_when_ncu_cannot_read_counters(tmp_path: Path) -> None:
    """ncu that reports ERR_NVGPUCTRPERM (and runs nothing): a clear reason, a failed exit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ncu"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        "while [[ $1 != --log-file ]]; do shift; done\n"
        'echo "==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access '
        'NVIDIA GPU Performance Counters on the target device 0." > "$2"\n'
    )
    fake.chmod(0o755)
    repo = Path(__file__).resolve().parents[1]
    path = f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin"
    done = subprocess.run(
        ["bash", "benchmarks/ncu_bytes.sh", str(tmp_path / "out")],
        cwd=repo,
        env={"PATH": path, "HOME": str(tmp_path), "PYTHONPATH": str(repo / "src")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: decode: ncu may not read the GPU performance counters" in done.stderr
    assert not (tmp_path / "out" / "ncu_bytes.json").exists()

"""Hardware peaks: datasheet matching by device name, overrides and calibrated values."""

import pytest

from vlmprof.metrics.peaks import datasheet_peaks, match_datasheet, resolve_peaks

CALIBRATED = {"tflops": 800.0, "tbps": 3.0, "method": "matmul and copy"}


@pytest.mark.parametrize(
    ("device_name", "entry"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM5 80GB"),
        ("NVIDIA H100 PCIe", "H100 PCIe 80GB"),
        ("NVIDIA H200", "H200 SXM 141GB"),
        ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
        ("NVIDIA A100-PCIE-40GB", "A100 40GB"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("NVIDIA B200", "B200"),
    ],
)
def test_device_names_match_their_datasheet_entry(device_name, entry):
    assert match_datasheet(device_name).name == entry


@pytest.mark.parametrize(
    "device_name",
    ["NVIDIA H100 NVL", "NVIDIA H200 NVL", "NVIDIA GH200 480GB", "NVIDIA GB200", "Tesla T4"],
)
def test_other_parts_match_nothing(device_name):
    assert match_datasheet(device_name) is None


def test_dtype_picks_the_column():
    assert datasheet_peaks("NVIDIA H100 80GB HBM3", "bfloat16")["tflops"] == 989.0
    assert datasheet_peaks("NVIDIA H100 80GB HBM3", "float16")["tflops"] == 989.0
    fp32 = datasheet_peaks("NVIDIA H100 80GB HBM3", "float32")
    assert (fp32["tflops"], fp32["tbps"]) == (67.0, 3.35)
    with pytest.raises(ValueError, match="dtype"):
        datasheet_peaks("NVIDIA H100 80GB HBM3", "int8")


@pytest.mark.parametrize("device_name", [None, "cpu", "Mystery GPU 9000"])
def test_no_datasheet_gives_none_with_reason(device_name):
    peaks = resolve_peaks(device_name, "float32", env={})
    assert peaks["datasheet"]["tflops"] is None and peaks["datasheet"]["tbps"] is None
    assert peaks["datasheet"]["reason"]
    assert peaks["reference"]["tflops"] is None and peaks["reference"]["reason"]
    assert "override" not in peaks


def test_datasheet_and_calibrated_side_by_side():
    peaks = resolve_peaks("NVIDIA H200", "bfloat16", calibrated=CALIBRATED, env={})
    assert peaks["datasheet"]["tflops"] == 989.0 and peaks["datasheet"]["tbps"] == 4.8
    assert peaks["reference"]["tflops"] == 989.0
    assert "H200" in peaks["reference"]["label"]
    assert peaks["calibrated"] == {
        "tflops": 800.0,
        "tbps": 3.0,
        "method": "matmul and copy",
        "origin": "measured or cached (not recorded)",
        "label": "measured or cached (not recorded); matmul and copy",
        "reason": None,
    }


@pytest.mark.parametrize(
    ("source", "age_s", "origin"),
    [
        ("measured", 0.0, "measured"),
        ("cached", 40.0, "cached (age 40 s)"),
        ("cached", 600.0, "cached (age 10 min)"),
        ("cached", 3.5 * 3600, "cached (age 3.5 h)"),
        ("cached", 3 * 86400, "cached (age 3.0 days)"),
    ],
)
def test_calibrated_peaks_say_measured_or_cached_with_age(source, age_s, origin):
    calibrated = CALIBRATED | {"source": source, "age_s": age_s}
    peaks = resolve_peaks("NVIDIA H200", "bfloat16", calibrated=calibrated, env={})
    assert peaks["calibrated"]["origin"] == origin
    assert peaks["calibrated"]["label"] == f"{origin}; matmul and copy"


def test_missing_calibration_has_a_reason():
    peaks = resolve_peaks("NVIDIA H200", "bfloat16", env={})
    assert peaks["calibrated"]["tflops"] is None and peaks["calibrated"]["reason"]


def test_config_override_beats_env_and_replaces_datasheet_in_reference():
    env = {"MFU_PEAK_TFLOPS": "500"}
    peaks = resolve_peaks("NVIDIA H100 80GB HBM3", "bfloat16", peak_tflops=700.0, env=env)
    assert peaks["override"]["tflops"] == 700.0
    assert peaks["override"]["source"] == "config peak_tflops"
    assert peaks["datasheet"]["tflops"] == 989.0  # kept as its own column
    assert peaks["reference"]["tflops"] == 700.0
    assert peaks["reference"]["tbps"] == 3.35  # bandwidth not overridden: datasheet
    assert "override" in peaks["reference"]["label"]
    assert "datasheet" in peaks["reference"]["label"]


def test_env_override_used_without_config():
    env = {"MFU_PEAK_TFLOPS": "123.5", "MBU_PEAK_TBPS": "1.5"}
    peaks = resolve_peaks("Mystery GPU 9000", "bfloat16", env=env)
    assert peaks["override"]["source"] == "env MFU_PEAK_TFLOPS, env MBU_PEAK_TBPS"
    assert (peaks["reference"]["tflops"], peaks["reference"]["tbps"]) == (123.5, 1.5)
    assert peaks["reference"]["reason"] is None


@pytest.mark.parametrize("value", ["fast", "-3"])
def test_bad_env_value_names_the_variable(value):
    with pytest.raises(ValueError, match="MFU_PEAK_TFLOPS"):
        resolve_peaks("NVIDIA H200", "bfloat16", env={"MFU_PEAK_TFLOPS": value})

"""Environment capture: never fails, says why GPU facts are missing, describes the GPU the
records name (per shard too), hashes configs stably."""

import importlib.metadata

from tests.records import page_record
from vlmprof.metrics.environment import collect_environment, shard_environment
from vlmprof.placement import Placement
from vlmprof.provenance import config_hash, source_state


def test_config_hash_ignores_key_order_and_sees_values():
    a = {"run_name": "x", "metrics": {"calibrate": True, "context_len_mode": "auto"}}
    b = {"metrics": {"context_len_mode": "auto", "calibrate": True}, "run_name": "x"}
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 64
    assert config_hash(a) != config_hash(a | {"run_name": "y"})


CPU = Placement("cpu", "float32")
H200 = Placement("cuda:1", "bfloat16", 1, "GPU-bbbb", "NVIDIA H200", "12.8", 91002)


def test_cpu_environment_is_complete_without_a_gpu():
    env = collect_environment(CPU, "auto")
    assert env["device_requested"] == "auto" and env["device_used"] == "cpu"
    assert env["device_name"] == "cpu" and env["device_error"] is None
    assert env["packages"]["pandas"] == importlib.metadata.version("pandas")
    assert env["packages"]["torch"] == importlib.metadata.version("torch")
    assert env["python"].count(".") == 2
    assert env["nvml"] == "unavailable: device is cpu, not CUDA"
    assert env["gpu_name"] is None and env["driver"] is None


def test_the_environment_describes_the_placements_gpu_not_this_machines():
    env = collect_environment(H200, "cuda")
    assert env["device_used"] == "cuda:1" and env["device_name"] == "NVIDIA H200"
    # No GPU of that UUID here: NVML says so rather than describing another GPU.
    assert env["nvml"].startswith("unavailable: ") and env["gpu_uuid"] is None
    # The timing job's CUDA and cuDNN, whatever torch (if any) aggregates.
    assert (env["cuda_version"], env["cudnn_version"]) == ("12.8", 91002)


def test_records_without_a_placement_are_reported_not_raised():
    env = collect_environment(None, "cuda:0")
    assert env["device_used"] is None and env["device_name"] is None
    assert env["cuda_version"] is None and env["cudnn_version"] is None
    assert "placement" in env["device_error"]
    assert env["nvml"] == f"unavailable: {env['device_error']}"


def test_environment_records_the_source_it_ran_from():
    env = collect_environment(CPU, "cpu")
    state = source_state()
    assert set(state) == {"git_commit", "git_dirty", "git_diff_sha256", "git_source"}
    assert {key: env[key] for key in state} == state


def _telemetry(sm_mhz: float, mem_mhz: float | None) -> dict:
    return {"sm_clock_median_mhz": sm_mhz, "mem_clock_median_mhz": mem_mhz}


def test_each_shard_says_which_gpu_it_ran_on_and_the_clocks_it_saw():
    h100 = Placement("cuda:0", "bfloat16", 0, "GPU-aaaa", "NVIDIA H100 80GB HBM3")
    records = [
        page_record("p", (640, 640), 0, shard=0, placement=h100, telemetry=_telemetry(1980, 2619)),
        page_record("p", (640, 640), 1, shard=0, placement=h100, telemetry=_telemetry(1700, 2619)),
        page_record("p", (640, 640), 2, shard=0, placement=h100, telemetry=_telemetry(1900, None)),
        page_record("q", (640, 640), 0, shard=1, placement=H200),
        page_record("q", (640, 640), 1, shard=1, placement=H200, status="error", error="OOM"),
    ]
    shards = shard_environment(records)
    assert shards == [
        {
            "shard": 0,
            "device": "cuda:0",
            "gpu_index": 0,
            "gpu_uuid": "GPU-aaaa",
            "gpu_name": "NVIDIA H100 80GB HBM3",
            "sm_clock_median_mhz": 1900.0,
            "mem_clock_median_mhz": 2619.0,
            "telemetry_runs": 3,
        },
        {
            "shard": 1,
            "device": "cuda:1",
            "gpu_index": 1,
            "gpu_uuid": "GPU-bbbb",
            "gpu_name": "NVIDIA H200",
            "sm_clock_median_mhz": None,
            "mem_clock_median_mhz": None,
            "telemetry_runs": 0,
        },
    ]


def test_a_cpu_shard_has_no_gpu_and_no_clocks():
    (shard,) = shard_environment([page_record("p", (640, 640), shard=0, placement=CPU)])
    assert shard["device"] == "cpu"
    assert [shard[key] for key in ("gpu_index", "gpu_uuid", "gpu_name")] == [None] * 3
    assert shard["sm_clock_median_mhz"] is None and shard["mem_clock_median_mhz"] is None
    assert shard_environment([page_record("p", (640, 640), shard=0)]) == []

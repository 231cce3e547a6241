"""Environment capture: never fails, says why GPU facts are missing, hashes configs stably."""

import importlib.metadata

from vlmprof.metrics.environment import collect_environment
from vlmprof.provenance import config_hash, source_state


def test_config_hash_ignores_key_order_and_sees_values():
    a = {"run_name": "x", "metrics": {"calibrate": True, "context_len_mode": "auto"}}
    b = {"metrics": {"context_len_mode": "auto", "calibrate": True}, "run_name": "x"}
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 64
    assert config_hash(a) != config_hash(a | {"run_name": "y"})


def test_cpu_environment_is_complete_without_a_gpu():
    env = collect_environment("cpu")
    assert env["device_requested"] == "cpu" and env["device_used"] == "cpu"
    assert env["device_name"] == "cpu"
    assert env["packages"]["pandas"] == importlib.metadata.version("pandas")
    assert env["packages"]["torch"] == importlib.metadata.version("torch")
    assert env["python"].count(".") == 2
    assert env["nvml"].startswith("unavailable: ")
    assert env["gpu_name"] is None and env["driver"] is None


def test_unavailable_device_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    env = collect_environment("cuda:0")
    assert env["device_used"] is None
    assert "cuda" in env["device_error"]
    assert env["nvml"].startswith("unavailable: ")


def test_environment_records_the_source_it_ran_from():
    env = collect_environment("cpu")
    state = source_state()
    assert set(state) == {"git_commit", "git_dirty", "git_diff_sha256", "git_source"}
    assert {key: env[key] for key in state} == state

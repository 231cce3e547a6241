"""Config -> library types: every key a job needs reaches its dataclass, the schema's
defaults included, and the params text the workflow passes on stays what it was."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from tests.workflow_helpers import default_config
from vlmprof.models import ModelSpec
from vlmprof.models.base import spec_params
from vlmprof.runtime.profile_settings import (
    LATER_SETTINGS,
    RELEASED_SHAPE,
    ProfileSettings,
    settings_params,
)

# Config key path -> a valid value other than the default, for every key the model uses.
MODEL_KEYS = {
    ("model", "name"): "deepseek_ocr2",
    ("model", "architecture"): "got_ocr2",
    ("model", "preset"): "full",
    ("model", "overrides"): {"decoder": {"layers": 2}},
    ("dtype",): "bfloat16",
    ("model", "attn_implementation"): "eager",
    ("model", "experts_implementation"): "grouped_mm",
    ("mode",): "base",
    ("max_crops",): 3,
    ("model", "seed"): 7,
    ("model", "checkpoint"): "/checkpoints/ocr",
    ("model", "trust_remote_code"): True,
}
SETTINGS_KEYS = {
    ("run_name",): "other",
    ("repeats",): 5,
    ("warmup_rounds",): 0,
    ("warmup_synthetic",): False,
    ("warmup_per_image",): False,
    ("max_new_tokens",): 7,
    ("ignore_eos",): False,
    ("dataset", "max_pixels"): 1000,
    ("telemetry", "enabled"): False,
    ("telemetry", "interval_ms"): 5,
    ("telemetry", "counter_interval_ms"): 0,
    ("batch_size",): 4,
    ("workers",): 2,
    ("output_length", "kind"): "lognormal",
}


def _changed(path: tuple[str, ...], value: object) -> dict:
    config = copy.deepcopy(default_config())
    node = config
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value
    return config


def _differences(a: dict, b: dict) -> set[str]:
    return {key for key in a if a[key] != b[key]}


def test_the_default_model_is_the_small_preset_on_the_cpu_and_large_on_cuda():
    config = default_config()
    cpu = ModelSpec.from_config(config, "cpu")
    assert (cpu.name, cpu.preset, cpu.device, cpu.dtype) == ("deepseek_ocr", "small", "cpu", "auto")
    assert (cpu.decode, cpu.compile, cpu.perturb) == ("eager", "none", 0.0)
    assert ModelSpec.from_config(config, "cuda:1").preset == "full"
    assert ModelSpec.from_config(_changed(("model", "preset"), "small"), "cuda").preset == "small"


@pytest.mark.parametrize("path", MODEL_KEYS, ids=".".join)
def test_each_model_key_of_the_config_reaches_one_field_of_the_spec(path: tuple[str, ...]):
    default = dataclasses.asdict(ModelSpec.from_config(default_config(), "cpu"))
    changed = dataclasses.asdict(ModelSpec.from_config(_changed(path, MODEL_KEYS[path]), "cpu"))
    assert len(_differences(default, changed)) == 1


@pytest.mark.parametrize("path", SETTINGS_KEYS, ids=".".join)
def test_each_timing_key_of_the_config_reaches_one_setting(path: tuple[str, ...]):
    default = ProfileSettings.run_settings(default_config())
    changed = ProfileSettings.run_settings(_changed(path, SETTINGS_KEYS[path]))
    assert len(_differences(default, changed)) == 1


def test_settings_come_whole_from_the_config_and_repeat_none_of_its_defaults():
    fields = {field.name: field for field in dataclasses.fields(ProfileSettings)}
    job_only = {"shard", "eos_id", "nvtx"}  # the job's own, not keys of the config
    assert set(ProfileSettings.run_settings(default_config())) == set(fields) - job_only
    defaulted = {name for name, f in fields.items() if f.default is not dataclasses.MISSING}
    # The run's shape and the pages' lengths default to the released flow, so a job's
    # params can leave them out.
    assert defaulted <= job_only | set(LATER_SETTINGS)
    assert RELEASED_SHAPE == {"batch_size": 1, "workers": 0, "preprocess": "cpu", "pages": None}
    assert LATER_SETTINGS["output_length"]["kind"] == "fixed"
    settings = ProfileSettings.from_config(default_config(), shard=2, eos_id=5)
    assert (settings.shard, settings.eos_id, settings.nvtx) == (2, 5, True)
    assert settings.repeats == default_config()["repeats"]


def test_the_params_text_of_the_default_run_is_unchanged():
    # Snakemake reruns a job whose params text changes: this text is what existing runs
    # of the default config were planned with.
    config = default_config()
    baseline = dataclasses.asdict(ModelSpec.from_config(config, "cpu"))
    spec = json.dumps(spec_params(baseline), sort_keys=True)
    settings = json.dumps(settings_params(ProfileSettings.run_settings(config)), sort_keys=True)
    assert spec == (
        '{"attn_implementation": "sdpa", "checkpoint": null, "compile": "none", "decode": '
        '"eager", "device": "cpu", "dtype": "auto", "experts_implementation": "eager", '
        '"max_crops": 6, "mode": "gundam", "name": "deepseek_ocr", "overrides": {}, '
        '"perturb": 0.0, "preset": "small", "seed": 0, "trust_remote_code": false}'
    )
    # A field added later is left out at its released value and filled back in.
    assert ModelSpec(**json.loads(spec)) == ModelSpec(**baseline)
    folded = spec_params(baseline | {"sam_attention": "folded"})
    assert folded["sam_attention"] == "folded"
    assert settings == (
        '{"ignore_eos": true, "max_new_tokens": 32, "max_pixels": 50000000, "repeats": 3, '
        '"run_id": "default", "telemetry": true, "telemetry_counter_interval_ms": 500, '
        '"telemetry_interval_ms": 20, "warmup_per_image": true, "warmup_rounds": 1, '
        '"warmup_synthetic": true}'
    )
    # The run's shape, moved from the model's spec, is left out at the released flow too.
    batched = settings_params(ProfileSettings.run_settings(config | {"batch_size": 8}))
    assert batched["batch_size"] == 8 and "workers" not in batched
    assert ProfileSettings(**json.loads(settings), shard=0).batch_size == 1

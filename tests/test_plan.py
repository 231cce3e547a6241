"""The run plan: a config made into arms (baseline, variants, the A/A control, compared
models), each with its folder, model spec and run settings, and every refusal made once,
before any job, naming its config key."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workflow_helpers import REPO
from vlmprof.config_check import ConfigError, check_config, load_schema
from vlmprof.models.base import ModelSpec
from vlmprof.plan import PlanError, RunPlan, compare_folder, run_device
from vlmprof.runtime.profile_settings import RELEASED_SHAPE, ProfileSettings
from vlmprof.variants.switches import SWITCHES

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
SWITCH_SCHEMA = SCHEMA["properties"]["variants"]["additionalProperties"]["properties"]
SETTINGS_FIELDS = {item.name for item in dataclasses.fields(ProfileSettings)}
SPEC_FIELDS = {item.name for item in dataclasses.fields(ModelSpec)}
GOT = {"got": {"name": "hf_vlm", "architecture": "got_ocr2"}}


def config_of(**changes: Any) -> dict[str, Any]:
    """The default config with top-level `changes`, checked as the workflow checks it (the
    schema's defaults filled, a `models:` entry's included)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(changes)
    check_config(config, SCHEMA)
    return config


def planned(device: str = "cpu", project: Path = REPO, **changes: Any) -> RunPlan:
    return RunPlan.from_config(config_of(**changes), device, project)


def refusal(device: str = "cpu", project: Path = REPO, **changes: Any) -> PlanError:
    with pytest.raises(PlanError) as refused:
        planned(device, project, **changes)
    assert "\n" not in str(refused.value)
    return refused.value


def test_the_default_run_is_one_baseline_arm_with_the_configs_settings():
    plan = planned()
    assert list(plan.arms) == ["baseline"] and plan.control is None
    arm = plan.baseline
    assert (arm.kind, arm.folder, arm.flops_of, arm.gated, arm.operators) == (
        "baseline",
        "",
        "baseline",
        False,
        True,
    )
    assert arm.spec == ModelSpec.from_config(config_of(), "cpu")
    assert arm.settings == ProfileSettings.run_settings(config_of())
    assert arm.check is None  # a float32 run is its own check
    # Nothing of the other arms' sections is in what its records keep.
    assert not {"variants", "models", "compare", "variant_gate"} & set(arm.config)


def test_each_arm_has_its_kind_folder_flop_count_and_what_it_waits_for():
    plan = planned(
        variants={"fast": {"experts": "grouped"}, "base-mode": {"mode": "base"}},
        models={"ocr2": {"name": "deepseek_ocr2"}},
    )
    assert [(a.name, a.kind, a.folder) for a in plan.arms.values()] == [
        ("baseline", "baseline", ""),
        ("fast", "variant", "variants/fast/"),
        ("base-mode", "variant", "variants/base-mode/"),
        ("control", "control", "variants/control/"),
        ("baseline/best", "model", "models/baseline/best/"),
        ("ocr2", "model", "models/ocr2/"),
        ("ocr2/best", "model", "models/ocr2/best/"),
    ]
    fast, sweep, control, ocr2 = (plan.arms[n] for n in ("fast", "base-mode", "control", "ocr2"))
    assert fast.gated and not fast.sweep_point and fast.flops_of == "baseline"
    assert fast.reference == control.reference == "baseline"
    assert sweep.sweep_point and not sweep.gated and sweep.flops_of == "base-mode"
    assert control.gated and control.spec == plan.baseline.spec and not control.switches
    assert set(control.waits_for) == {
        "baseline",
        "fast",
        "base-mode",
        "baseline/best",
        "ocr2",
        "ocr2/best",
    }
    assert ocr2.flops_of == "ocr2" and not ocr2.gated and ocr2.config["model"]["name"] == (
        "deepseek_ocr2"
    )
    assert not any(arm.operators for arm in plan.arms.values() if arm.kind != "baseline")
    assert plan.at("variants/fast/") is fast and plan.at("") is plan.baseline


def test_a_variant_switches_run_settings_apart_from_the_model():
    plan = planned(variants={"b8": {"batch_size": 8, "workers": 2}})
    b8, baseline = plan.arms["b8"], plan.baseline
    assert b8.spec == baseline.spec
    assert (b8.settings["batch_size"], b8.settings["workers"]) == (8, 2)
    assert b8.gated and not b8.sweep_point
    params = b8.run.params()
    assert params["settings"]["batch_size"] == 8 and "batch_size" not in params["spec"]
    assert b8.run.resolved() == params["spec"] | {"batch_size": 8, "workers": 2}
    # The baseline's params leave the released shape out: its text is what it was.
    assert not RELEASED_SHAPE.keys() & baseline.run.params()["settings"].keys()


def test_a_bfloat16_runs_gated_arms_have_a_float32_check_and_the_oracle_is_released():
    plan = planned(
        device="cuda",
        dtype="bfloat16",
        variants={"b2": {"batch_size": 2, "workers": 1}, "crops": {"max_crops": 2}},
    )
    b2 = plan.arms["b2"]
    assert b2.check.spec.upcast == "float32"
    assert (b2.check.settings["workers"], b2.check.settings["preprocess"]) == (0, "cpu")
    assert b2.check.settings["batch_size"] == 2
    assert plan.baseline.check is not None and plan.arms["crops"].check is None
    oracle = plan.baseline.oracle
    assert (oracle.spec.upcast, oracle.spec.decode, oracle.spec.experts_implementation) == (
        "float64",
        "eager",
        "eager",
    )
    assert {key: oracle.settings[key] for key in RELEASED_SHAPE} == RELEASED_SHAPE


def test_each_compared_model_has_a_best_path_gated_against_its_released_arm():
    """On CUDA: graphed decode, experts grouped where the model has them (batched in
    float32, where a graph cannot capture grouped ones); on a CPU: a static KV cache."""
    models = {
        "ocr2": {"name": "deepseek_ocr2"},
        "got": {"name": "hf_vlm", "architecture": "got_ocr2"},
        "fast-ocr": {"experts_implementation": "grouped_mm"},
    }
    plan = planned(device="cuda", dtype="bfloat16", models=models)
    assert [arm.compared_as for arm in plan.compared] == [
        {"arm": "baseline", "name": "baseline", "path": "released", "switches": {}},
        {
            "arm": "baseline/best",
            "name": "baseline",
            "path": "best",
            "switches": {"decode": "cuda_graph", "experts": "grouped"},
        },
        {"arm": "ocr2", "name": "ocr2", "path": "released", "switches": {}},
        {
            "arm": "ocr2/best",
            "name": "ocr2",
            "path": "best",
            "switches": {"decode": "cuda_graph", "experts": "grouped"},
        },
        {"arm": "got", "name": "got", "path": "released", "switches": {}},
        {"arm": "got/best", "name": "got", "path": "best", "switches": {"decode": "cuda_graph"}},
        {"arm": "fast-ocr", "name": "fast-ocr", "path": "released", "switches": {}},
        {
            "arm": "fast-ocr/best",
            "name": "fast-ocr",
            "path": "best",
            "switches": {"decode": "cuda_graph"},
        },
    ]
    assert plan.references == {"baseline", "ocr2", "got", "fast-ocr"}
    got, best = plan.arms["got"], plan.arms["got/best"]
    assert not got.gated and best.gated and best.reference == "got"
    assert best.flops_of == "got" and best.config == got.config
    assert best.spec == dataclasses.replace(got.spec, decode="cuda_graph")
    # Its model's released arm is the gate's reference: its own oracle and float32 check.
    assert got.oracle.spec.upcast == "float64" and got.oracle.spec.architecture == "got_ocr2"
    assert got.check.spec.upcast == "float32" and best.check.spec.decode == "cuda_graph"
    ocr2 = plan.arms["ocr2/best"]
    # A graph cannot capture grouped experts in float32: the check decodes statically.
    assert ocr2.spec.experts_implementation == "grouped_mm" and ocr2.check.spec.decode == "static"
    float32 = planned(device="cuda", dtype="float32", models={"ocr2": models["ocr2"]})
    assert float32.arms["ocr2/best"].switches == {"decode": "cuda_graph", "experts": "batched"}
    on_cpu = planned(models=models)
    assert {arm.name: arm.switches for arm in on_cpu.compared if arm.gated} == {
        f"{name}/best": {"decode": "static"} for name in ("baseline", *models)
    }
    assert all(arm.check is None for arm in on_cpu.arms.values())  # float32: its own check


def test_best_paths_take_the_configs_switches_or_stay_off():
    models = {"got": {"name": "hf_vlm", "architecture": "got_ocr2"}}
    chosen = {"got": {"perturb": 1.0}, "baseline": {"decode": "eager", "experts": "grouped"}}
    plan = planned(models=models, best_paths={"switches": chosen})
    assert plan.arms["got/best"].switches == {"decode": "static", "perturb": 1.0}
    assert plan.arms["got/best"].spec.perturb == 1.0
    assert plan.arms["baseline/best"].switches == {"decode": "eager", "experts": "grouped"}
    off = planned(models=models, best_paths={"enabled": False})
    assert list(off.arms) == ["baseline", "got"] and not off.references
    # Without models there is no comparison, so no best path.
    assert list(planned(best_paths={"switches": {"baseline": {}}}).arms) == ["baseline"]


def test_a_model_that_takes_only_its_released_path_is_noted():
    remote = {"name": "hf_vlm", "checkpoint": "checkpoints/got", "trust_remote_code": True}
    plan = planned(models={"remote": remote})
    assert "remote/best" not in plan.arms and "baseline/best" in plan.arms
    note = next(note for note in plan.notes if note.key == "best_paths.switches.remote")
    assert "takes no faster decode path here" in note.message and not note.warning


def test_folders_match_the_arms_they_pick_and_no_other():
    plan = planned(variants={"a-b": {"experts": "grouped"}}, models={"got": {"name": "hf_vlm"}})
    every = re.compile(plan.folders())
    assert all(every.fullmatch(arm.folder) for arm in plan.arms.values())
    assert not every.fullmatch("variants/other/") and not every.fullmatch("variants/")
    gated = re.compile(plan.folders(lambda arm: arm.gated))
    assert gated.fullmatch("variants/a-b/") and not gated.fullmatch("")
    assert not gated.fullmatch("models/got/")
    assert plan.folders(lambda arm: False) == "(?!)"


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        (
            {"variants": {"control": {"experts": "grouped"}}},
            "variant_control.name",
            "variant_control.name: 'control' is taken by a variant",
        ),
        (
            {"model": {"name": "deepseek_ocr2"}, "batch_size": 2},
            "batch_size",
            "batch_size: 2 pages at once are built for deepseek_ocr's own module tree",
        ),
        (
            {"models": {"got": {"name": "hf_vlm", "architecture": "got_ocr2"}}, "batch_size": 2},
            "models.got",
            "models.got: 2 pages at once are built for deepseek_ocr",
        ),
        (
            {"model": {"overrides": {"decoder": {"wings": 2}}}},
            "model",
            "model.overrides.decoder.wings: unknown field",
        ),
        (
            {"models": {"big": {"overrides": {"decoder": {"wings": 2}}}}},
            "models.big",
            "models.big: model.overrides.decoder.wings: unknown field",
        ),
        (
            {"model": {"name": "deepseek_ocr2"}, "mode": "tiny"},
            "mode",
            "mode: deepseek_ocr2 has no resolution mode 'tiny'; it knows small, base, gundam",
        ),
        (
            {"models": {"ocr2": {"name": "deepseek_ocr2"}}, "mode": "tiny"},
            "models.ocr2",
            "models.ocr2: deepseek_ocr2 has no resolution mode 'tiny'",
        ),
        (
            {"model": {"name": "deepseek_ocr2"}, "variants": {"t": {"mode": "tiny"}}},
            "variants.t",
            "variants.t.mode: deepseek_ocr2 has no resolution mode 'tiny'",
        ),
        (
            {"variants": {"graphed": {"experts": "grouped", "decode": "cuda_graph"}}},
            "variants.graphed",
            "variants.graphed.decode: cuda_graph needs a CUDA device and this run is on cpu",
        ),
        (
            {"variants": {"ahead": {"workers": 2, "preprocess": "gpu"}}},
            "variants.ahead",
            "variants.ahead.preprocess: gpu needs a CUDA device",
        ),
        (
            {"variants": {"baseline": {"experts": "grouped"}}},
            "variants.baseline",
            "variants.baseline: the name is taken by the run's own settings",
        ),
        (
            {"models": {"baseline": {"name": "deepseek_ocr2"}}},
            "models.baseline",
            "models.baseline: the name is taken by the run's own model",
        ),
        (
            {"variants": {"fast": {"experts": "grouped"}}, "models": {"fast": {}}},
            "models.fast",
            "models.fast: the name is taken by a variant",
        ),
        (
            {"variants": {"fast": {"experts": "grouped"}}, "models": {"control": {}}},
            "models.control",
            "models.control: the name is taken by the A/A control",
        ),
        (
            {"model": {"trust_remote_code": True}},
            "model.trust_remote_code",
            "model.trust_remote_code: only with model.checkpoint",
        ),
        (
            {"models": {"remote": {"trust_remote_code": True}}},
            "models.remote.trust_remote_code",
            "models.remote.trust_remote_code: only with models.remote.checkpoint",
        ),
        (
            {"models": GOT, "best_paths": {"switches": {"qwen": {}}}},
            "best_paths.switches.qwen",
            "best_paths.switches.qwen: no compared model of that name; name one of baseline, got",
        ),
        (
            {"models": GOT, "best_paths": {"switches": {"got": {"mode": "base"}}}},
            "best_paths.switches.got",
            "best_paths.switches.got.mode: a best path runs its model's own workload",
        ),
        (
            {"models": GOT, "best_paths": {"switches": {"got": {"vision": "cuda_graph"}}}},
            "best_paths.switches.got",
            "best_paths.switches.got.vision: cuda_graph needs a CUDA device and this run is on cpu",
        ),
        ({"shards": 2.0}, "shards", "shards: 2.0 must be a whole number written without"),
        (
            {"metrics": {"context_len_mode": "fixed"}},
            "metrics.context_len_fixed",
            "metrics.context_len_fixed: required when context_len_mode is fixed",
        ),
        (
            {"subset": {"list_file": "lists/none.txt"}},
            "subset.list_file",
            "subset.list_file: lists/none.txt does not exist",
        ),
        (
            {"dataset": {"source": "folder", "path": "data/no-such-pages"}},
            "dataset.path",
            "dataset.path: data/no-such-pages does not exist",
        ),
    ],
)
def test_every_refusal_is_one_line_naming_its_key(changes: dict, key: str, message: str):
    refused = refusal(**changes)
    assert refused.key == key
    assert str(refused).startswith(message), str(refused)


def test_a_mode_the_model_knows_plans():
    ocr2 = {"name": "deepseek_ocr2"}
    plan = planned(model=ocr2, mode="small", variants={"g": {"mode": "gundam"}})
    assert plan.arms["g"].sweep_point and plan.arms["g"].spec.mode == "gundam"
    # Models that take the page whole ignore the mode.
    assert planned(model={"name": "hf_vlm"}, mode="tiny").baseline.spec.mode == "tiny"


def test_an_omnidocbench_file_needs_its_image_root(tmp_path: Path):
    (tmp_path / "pages.json").write_text("[]")
    dataset = {"source": "omnidocbench", "path": "pages.json"}
    refused = refusal(project=tmp_path, dataset=dataset)
    assert refused.key == "dataset.image_root"
    assert str(refused) == "dataset.image_root: required for source omnidocbench"


def test_what_auto_made_of_the_dataset_and_too_large_a_subset_are_noted(tmp_path: Path):
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "page.png").write_bytes(b"not opened when planning")
    plan = planned(project=tmp_path, dataset={"path": "pages"}, subset={"n": 3})
    assert plan.dataset_source == "folder"
    notes = {note.key: note for note in plan.notes}
    assert "source: folder" in notes["dataset.path"].message and not notes["dataset.path"].warning
    assert notes["subset.n"].warning
    assert notes["subset.n"].message.startswith("subset.n: 3 is more than the 1 pages")
    # The arms' records keep the source that is profiled, never auto.
    assert plan.baseline.config["dataset"]["source"] == "folder"


def test_every_arm_shares_the_pages_lengths_and_no_variant_switches_them(tmp_path: Path):
    lengths = {"kind": "lognormal", "mean": 30, "spread": 0.4, "seed": 2}
    plan = planned(
        output_length=lengths,
        variants={"b2": {"batch_size": 2}},
        models={"ocr2": {"name": "deepseek_ocr2"}},
    )
    assert all(arm.settings["output_length"] == lengths for arm in plan.arms.values())
    assert plan.baseline.oracle.settings["output_length"] == lengths
    assert plan.baseline.run.params()["settings"]["output_length"] == lengths
    # A variant that would give pages other lengths is refused by the schema, in one line.
    with pytest.raises(ConfigError, match=r"variants\.long.*output_length"):
        config_of(variants={"long": {"output_length": {"kind": "fixed"}}})
    assert "output_length" not in SWITCHES
    # Lengths from the pages' ground-truth text: synthetic pages keep theirs, a folder of
    # images has none, which is refused before any job.
    dataset = {"kind": "dataset"}
    assert planned(output_length=dataset).baseline.settings["output_length"]["kind"] == "dataset"
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "page.png").write_bytes(b"not opened when planning")
    refused = refusal(project=tmp_path, dataset={"path": "pages"}, output_length=dataset)
    assert refused.key == "output_length.kind"
    assert str(refused).startswith(
        "output_length.kind: dataset counts each page's ground-truth text, and dataset.source "
        "folder (a folder of images) has none"
    )


def test_the_device_is_decided_once_and_a_cluster_run_names_it():
    assert run_device(config_of(), cluster=False, visible_gpus=lambda: 0) == "cpu"
    assert run_device(config_of(), cluster=False, visible_gpus=lambda: 2) == "cuda"
    with pytest.raises(PlanError, match="device: cuda was requested but no CUDA GPU") as lone:
        run_device(config_of(device="cuda"), cluster=False, visible_gpus=lambda: 0)
    assert lone.value.key == "device"
    with pytest.raises(PlanError, match="set them explicitly") as cluster:
        run_device(config_of(device="cuda"), cluster=True, visible_gpus=lambda: 0 / 0)
    assert cluster.value.key == "model.preset"
    explicit = config_of(device="cuda", model={"preset": "full"})
    assert run_device(explicit, cluster=True, visible_gpus=lambda: 0 / 0) == "cuda"


def test_the_compare_target_needs_the_other_runs_folder():
    with pytest.raises(PlanError, match="compare.baseline: set it to the results folder"):
        compare_folder(config_of())
    assert compare_folder(config_of(compare={"baseline": "results/other"})) == "results/other"


def _values(schema: dict) -> list[Any]:
    """Values the schema allows a switch: its enum, or a few numbers within its bounds."""
    if "enum" in schema:
        return list(schema["enum"])
    low = schema.get("minimum", 0)
    return [low, low + 1] if schema["type"] == "integer" else [low + 0.5]


def test_the_switch_table_is_the_one_place_a_switch_is_declared():
    """Adding a switch is a field (of the model spec or the run settings), a row of
    `SWITCHES` with its refusals, and its schema entry: the plan carries every value the
    schema allows into that field of the variant's arm and nothing else, or refuses it
    naming the switch's key; the gate and the comparison need nothing new."""
    assert set(SWITCHES) == set(SWITCH_SCHEMA)
    base = planned(device="cuda").baseline
    for name, switch in SWITCHES.items():
        assert switch.field in (SPEC_FIELDS if switch.sets_model else SETTINGS_FIELDS), name
        # What the user reads of it agrees: a workload switch says it makes a sweep point.
        assert switch.workload == ("sweep point" in SWITCH_SCHEMA[name]["description"]), name
        for value in _values(SWITCH_SCHEMA[name]):
            try:
                arm = planned(device="cuda", variants={"v": {name: value}}).arms["v"]
            except PlanError as error:
                assert str(error).startswith(f"variants.v.{name}: "), str(error)
                continue
            got = dataclasses.asdict(arm.spec) | dict(arm.settings)
            was = dataclasses.asdict(base.spec) | dict(base.settings)
            changed = {key for key in got if got[key] != was[key]}
            assert changed <= {switch.field}, (name, value, changed)
            assert got[switch.field] == switch.value(value), (name, value)
            assert arm.sweep_point == (switch.workload and bool(changed)), (name, value)


def test_planning_imports_no_torch():
    script = (
        "import sys, yaml\n"
        "from pathlib import Path\n"
        "from vlmprof.config_check import ConfigError, check_config, load_schema\n"
        "from vlmprof.plan import RunPlan\n"
        f"repo = Path({str(REPO)!r})\n"
        "config = yaml.safe_load((repo / 'config/config.yaml').read_text())\n"
        "config['variants'] = {'b2': {'batch_size': 2}}\n"
        "config['models'] = {'got': {'name': 'hf_vlm', 'architecture': 'got_ocr2'}}\n"
        "check_config(config, load_schema(repo / 'workflow/schemas/config.schema.yaml'))\n"
        "RunPlan.from_config(config, 'cuda', repo)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.replace("'", '"')) == []

"""The run plan: a validated config made into arms, every refusal made once, before any job.

An arm is the unit the workflow multiplies: the baseline (the run's own model and settings),
each variant (switches over the baseline), the A/A control (the baseline again, timed after
every other arm) and each compared model (`models:`) on its released path and on its best
gated path (`best_paths`; the run's own model's too). Each has a folder under the run's
results, a model spec (what is built), run settings (how it is run: batch size, workers,
where pages are preprocessed, ...) and its place in the workflow: which arm the correctness
gate judges it against, whether it is a sweep point, whose FLOP count its utilisation uses,
whose records its timing waits for. The workflow's rules read these; a refusal here is a
`PlanError` naming the config key, which the workflow prints in one line.

Torch-free: the workflow plans its jobs without importing torch.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vlmprof.data.manifest import SOURCES_WITH_TEXT
from vlmprof.data.source import DatasetSourceError, count_pages, resolve_source, subset_warning
from vlmprof.device_choice import DeviceUnavailableError, choose_device
from vlmprof.models import check_preset
from vlmprof.models.base import ModelSpec, spec_params
from vlmprof.runtime.profile_settings import ProfileSettings, run_shape, settings_params
from vlmprof.variants.best_path import BEST, RELEASED, best_switches
from vlmprof.variants.control import control_arm
from vlmprof.variants.switches import (
    BASELINE,
    SWITCHES,
    VariantError,
    apply_switches,
    arm_view,
    changes_workload,
    check_switches,
    check_variant,
    first_refusal,
    gate_check,
    oracle,
    split_view,
)

ArmKind = Literal["baseline", "variant", "control", "model"]
# Config sections that name other runs, other arms or how arms are judged: left out of the
# configuration an arm's records keep, so adding a variant or a model redoes none of the
# baseline's jobs.
OTHER_ARMS = ("compare", "variants", "variant_gate", "variant_control", "models", "best_paths")


class PlanError(ValueError):
    """A config the run cannot be planned from: the message names `key`, the config key to
    change; the workflow exits with `status`."""

    def __init__(self, key: str, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.key, self.status = key, status


@dataclass(frozen=True)
class ModelRun:
    """A model and how a job runs it: its spec and its run settings (the job's own shard
    and end-of-sequence token apart)."""

    spec: ModelSpec
    settings: Mapping[str, Any]

    def params(self) -> dict[str, dict[str, Any]]:
        """The job's params: spec and settings, fields added later left out at their
        released value (so that adding them redid no finished job)."""
        return {
            "spec": spec_params(dataclasses.asdict(self.spec)),
            "settings": settings_params(self.settings),
        }

    def resolved(self) -> dict[str, Any]:
        """What the config resolved to, as metrics.json keeps it: the spec's params and the
        run's shape where it is not the released flow's."""
        return spec_params(dataclasses.asdict(self.spec)) | run_shape(self.settings)


@dataclass(frozen=True)
class Arm:
    """One arm of the run: what it builds and runs, where its results go, and how the
    workflow treats it."""

    name: str
    kind: ArmKind
    # Its results' folder under the run's: "" (the baseline's are the run's own),
    # variants/<name>/ (variants and the control), models/<name>/ or, for a model's best
    # path, models/<name>/best/ (the run's own model's: models/baseline/best/).
    folder: str
    run: ModelRun
    # The configuration its records come from (provenance; other arms' sections left out).
    config: Mapping[str, Any]
    # A variant's switches over the baseline, a best path's over its model's released arm;
    # none for the other arms.
    switches: Mapping[str, Any] = field(default_factory=dict)
    # The arm whose tokens it is fed and whose outputs the correctness gate judges it
    # against (the baseline for a variant and the control, the model's released arm for a
    # best path); None for an arm the gate does not judge.
    reference: str | None = None
    # Another workload than the baseline's (preset, mode, max_crops): its own FLOP count, no
    # gate.
    sweep_point: bool = False
    # Its run for the gate at float32 where the run is narrower (baseline and gated arms).
    check: ModelRun | None = None
    # The arm whose static FLOP count its utilisation uses.
    flops_of: str = BASELINE
    # Arms whose records its timing waits for (the control: every other arm, so its drift
    # spans their time).
    waits_for: tuple[str, ...] = ()
    # Whether its aggregation reads the operator pass (the baseline, with operators on).
    operators: bool = False

    @property
    def spec(self) -> ModelSpec:
        """What it builds."""
        return self.run.spec

    @property
    def settings(self) -> Mapping[str, Any]:
        """How it runs it."""
        return self.run.settings

    @property
    def gated(self) -> bool:
        """Whether the correctness gate judges it (against its `reference`)."""
        return self.reference is not None

    @property
    def oracle(self) -> ModelRun:
        """The gate's oracle for the arms judged against this one: its weights on the
        released code path in float64."""
        return ModelRun(*split_view(oracle(arm_view(self.spec, self.settings))))

    @property
    def compared_as(self) -> dict[str, Any]:
        """How the model comparison names a model's arm: the arm, the model (its released
        arm's name), its path (released or best) and the best path's switches."""
        if self.kind == "model" and self.reference is not None:
            model, path = self.reference, BEST
        else:
            model, path = self.name, RELEASED
        return {"arm": self.name, "name": model, "path": path, "switches": dict(self.switches)}

    @property
    def label(self) -> str:
        """How a job's progress names it: "" for the baseline, else kind and name."""
        return "" if self.kind == "baseline" else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Note:
    """Something planning found worth telling, about a config key: `warning` or info."""

    key: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class RunPlan:
    """Every arm of a run (baseline first, variants in config order, the control, the
    compared models, each followed by its best path), the data set's resolved source and
    what planning noted."""

    device: str
    arms: dict[str, Arm]
    dataset_source: str
    notes: tuple[Note, ...] = ()

    @property
    def baseline(self) -> Arm:
        """The run's own arm."""
        return self.arms[BASELINE]

    @property
    def control(self) -> str | None:
        """The A/A control's name, when the run has one."""
        return next((arm.name for arm in self.arms.values() if arm.kind == "control"), None)

    def of_kind(self, *kinds: ArmKind) -> list[Arm]:
        """The arms of these kinds, in plan order."""
        return [arm for arm in self.arms.values() if arm.kind in kinds]

    @property
    def references(self) -> set[str]:
        """The arms the gate judges others against: each needs its oracle."""
        return {arm.reference for arm in self.arms.values() if arm.reference is not None}

    @property
    def compared(self) -> list[Arm]:
        """The arms the model comparison reads, with `models:`: the run's own model, then
        each of `models:`, each followed by its best path; none without `models:`."""
        models = self.of_kind("model")
        return [self.baseline, *models] if models else []

    def at(self, folder: str) -> Arm:
        """The arm whose results are in `folder` (a rule's `arm` wildcard)."""
        return next(arm for arm in self.arms.values() if arm.folder == folder)

    def folders(self, keep: Callable[[Arm], bool] = lambda arm: True) -> str:
        """A pattern matching the folders of the arms `keep` picks, and nothing else."""
        chosen = [re.escape(arm.folder) for arm in self.arms.values() if keep(arm)]
        return f"(?:{'|'.join(chosen)})" if chosen else "(?!)"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], device: str, project: Path) -> RunPlan:
        """The plan of a validated config (defaults filled) whose jobs run on `device`, with
        relative paths read from `project`; a PlanError for the first thing that cannot run.
        """
        control = _control(config)
        source, notes = _dataset(config, project)
        config = {**config, "dataset": {**config["dataset"], "source": source}}
        _check_paths(config, project)
        _check_output_length(config)
        base = _baseline(config, device)
        variants = {
            name: _variant(name, switches, base) for name, switches in config["variants"].items()
        }
        taken = {BASELINE: "the run's own model", **dict.fromkeys(variants, "a variant")}
        if control is not None:
            taken[control] = "the A/A control"
        models = {}
        for name, section in config["models"].items():
            if name in taken:
                raise PlanError(
                    f"models.{name}",
                    f"models.{name}: the name is taken by {taken[name]}; name it after the model",
                )
            models[name] = _model(name, section, config, device)
        compared, noted = _best_paths(config["best_paths"], {BASELINE: base, **models})
        arms = {BASELINE: base, **variants}
        if control is not None:
            others = (BASELINE, *variants, *compared)
            arms[control] = dataclasses.replace(
                _variant(control, {}, base), kind="control", waits_for=others
            )
        arms |= {name: arm for name, arm in compared.items() if name != BASELINE}
        return cls(device, arms, source, notes + noted)


def run_device(config: Mapping[str, Any], cluster: bool, visible_gpus: Callable[[], int]) -> str:
    """The device every job uses, decided once where the workflow is planned.

    Run locally, `auto` is judged on this machine, by the GPUs `visible_gpus` counts (NVML,
    no torch). Through a cluster executor the planning host (a login node) says nothing
    about the compute nodes, so the device and preset must be written out; the GPU jobs
    check on their node, with torch, that CUDA is really there.
    """
    requested, preset = config["device"], config["model"]["preset"]
    if cluster:
        if requested == "auto" or preset == "auto":
            raise PlanError(
                "device" if requested == "auto" else "model.preset",
                "device and model.preset: set them explicitly (e.g. device: cuda, "
                "model.preset: full) when jobs run on a cluster; auto would be judged on the "
                "submitting host",
            )
        return requested
    try:
        return choose_device(requested, visible_gpus())
    except (DeviceUnavailableError, ValueError) as error:
        raise PlanError("device", str(error)) from None


def compare_folder(config: Mapping[str, Any]) -> str:
    """The results folder of the run `compare.baseline` names (the compare target's)."""
    baseline = config["compare"]["baseline"]
    if not baseline:
        raise PlanError(
            "compare.baseline",
            "compare.baseline: set it to the results folder of the run to compare against, "
            "e.g. --config compare='{baseline: results/other}'",
        )
    return str(baseline)


def _control(config: Mapping[str, Any]) -> str | None:
    try:
        return control_arm(config["variants"], config["variant_control"])
    except VariantError as error:
        raise PlanError("variant_control.name", str(error)) from None


def _recorded(config: Mapping[str, Any], model: Mapping[str, Any] | None = None) -> dict:
    """The configuration an arm's records come from: the run's, without other arms'
    sections, with a compared model's own `model:` section."""
    own = {key: value for key, value in config.items() if key not in OTHER_ARMS}
    return own if model is None else {**own, "model": model}


def _refuse_arm(view: Mapping[str, Any], key_of: Callable[[str], str], preset_key: str) -> None:
    """Raise a PlanError when an arm of view `view` cannot run: the switches' refusals (each
    under `key_of(switch)`), then its preset (under `preset_key`)."""
    refused = first_refusal(view, key_of, {})
    if refused is not None:
        raise PlanError(*refused)
    _check_preset(view, preset_key)


def _check_preset(view: Mapping[str, Any], key: str) -> None:
    """Raise a PlanError under `key` when the arm's preset and overrides make no model (the
    baseline's message names its model.* key; another arm's is led by its own key)."""
    if view["checkpoint"]:
        return
    try:
        check_preset(view["name"], view["preset"], view["overrides"])
    except ValueError as error:
        raise PlanError(key, str(error) if key == "model" else f"{key}: {error}") from None


def _baseline(config: Mapping[str, Any], device: str) -> Arm:
    """The run's own model and settings, on the released decode path."""
    spec = ModelSpec.from_config(config, device)
    settings = ProfileSettings.run_settings(config)
    view = arm_view(spec, settings)
    _refuse_arm(view, lambda switch: switch, "model")
    operators = bool(config["operators"]["enabled"])
    return Arm(
        BASELINE,
        "baseline",
        "",
        ModelRun(spec, settings),
        _recorded(config),
        check=_check_of(view),
        operators=operators,
    )


def _variant(name: str, switches: Mapping[str, Any], base: Arm) -> Arm:
    """A variant: the baseline with `switches`; the control is one without any."""
    base_view = arm_view(base.spec, base.settings)
    try:
        check_variant(name, base_view, switches)
    except VariantError as error:
        raise PlanError(f"variants.{name}", str(error)) from None
    view = apply_switches(base_view, switches)
    _check_preset(view, f"variants.{name}")
    sweep = changes_workload(base_view, switches)
    spec, settings = split_view(view)
    return Arm(
        name,
        "variant",
        f"variants/{name}/",
        ModelRun(spec, settings),
        base.config,
        switches=dict(switches),
        reference=None if sweep else BASELINE,
        sweep_point=sweep,
        check=None if sweep else _check_of(view),
        flops_of=name if sweep else BASELINE,
    )


def _model(name: str, section: Mapping[str, Any], config: Mapping[str, Any], device: str) -> Arm:
    """A compared model on its released path: the run's settings with its own `model:`
    section."""
    key = f"models.{name}"
    spec = ModelSpec.from_config({**config, "model": section}, device)
    settings = ProfileSettings.run_settings(config)
    view = arm_view(spec, settings)
    _refuse_arm(view, lambda switch: key, key)
    return Arm(
        name,
        "model",
        f"models/{name}/",
        ModelRun(spec, settings),
        _recorded(config, section),
        check=_check_of(view),
        flops_of=name,
    )


def _best_paths(
    section: Mapping[str, Any], released: Mapping[str, Arm]
) -> tuple[dict[str, Arm], tuple[Note, ...]]:
    """The compared models' arms, each of the `released` ones (the run's own first) followed
    by its best path, gated against it; none without other models to compare or with
    best_paths.enabled off. A model that takes no path but its released one is noted."""
    chosen = section["switches"]
    unknown = sorted(set(chosen) - set(released))
    if unknown:
        key = f"best_paths.switches.{unknown[0]}"
        raise PlanError(
            key,
            f"{key}: no compared model of that name; name one of {', '.join(released)}"
            f" ({BASELINE} is the run's own model)",
        )
    if len(released) == 1:
        return {}, ()
    if not section["enabled"]:
        return dict(released), ()
    arms: dict[str, Arm] = {}
    notes = []
    for name, arm in released.items():
        arms[name] = arm
        key = f"best_paths.switches.{name}"
        best = _best_path(key, arm, chosen.get(name, {}))
        if best is not None:
            arms[best.name] = best
            continue
        message = f"{key}: model {name} takes no faster decode path here; its released path"
        notes.append(Note(key, message + " is profiled alone"))
    return arms, tuple(notes)


def _best_path(key: str, released: Arm, chosen: Mapping[str, Any]) -> Arm | None:
    """The best path of a model's `released` arm, with the `chosen` switches (config key
    `key`) over the decode built for speed that it takes here; None where it takes none."""
    view = arm_view(released.spec, released.settings)
    workload = sorted(name for name in chosen if SWITCHES[name].workload)
    if workload:
        raise PlanError(
            key,
            f"{key}.{workload[0]}: a best path runs its model's own workload; drop the switch"
            " and compare the workload as a variant",
        )
    switches = best_switches(view, chosen)
    if switches is None:
        try:
            check_switches(key, view, chosen)
        except VariantError as error:
            raise PlanError(key, str(error)) from None
        return None
    best = apply_switches(view, switches)
    return Arm(
        f"{released.name}/{BEST}",
        "model",
        f"models/{released.name}/{BEST}/",
        ModelRun(*split_view(best)),
        released.config,
        switches=switches,
        reference=released.name,
        check=_check_of(best),
        flops_of=released.flops_of,
    )


def _check_of(view: Mapping[str, Any]) -> ModelRun | None:
    """An arm's gate check at float32, where the run is narrower."""
    check = gate_check(view)
    return None if check is None else ModelRun(*split_view(check))


def _dataset(config: Mapping[str, Any], project: Path) -> tuple[str, tuple[Note, ...]]:
    """The data set's source, what `auto` makes of dataset.path: a refusal of a missing or
    empty path or of synthetic pages that would be written into a user's folder; a note of
    what auto chose, a warning when subset.n exceeds the pages there."""
    dataset = config["dataset"]
    try:
        resolved = resolve_source(dataset["source"], dataset["path"], project)
    except DatasetSourceError as error:
        raise PlanError(error.key, str(error)) from None
    notes = []
    if resolved.note:
        notes.append(Note("dataset.path", resolved.note))
    if not config["subset"]["list_file"]:
        where = project / dataset["path"]
        pages = count_pages(resolved.source, where, dataset["synthetic_pages"])
        warning = subset_warning(config["subset"]["n"], pages, dataset["path"])
        if warning:
            notes.append(Note("subset.n", warning, warning=True))
    return resolved.source, tuple(notes)


def _check_paths(config: Mapping[str, Any], project: Path) -> None:
    """Refuse a configured input path that is missing, and settings that need another."""
    dataset = config["dataset"]
    if dataset["source"] == "omnidocbench" and not dataset["image_root"]:
        raise PlanError(
            "dataset.image_root", "dataset.image_root: required for source omnidocbench"
        )
    list_file = config["subset"]["list_file"]
    if list_file and not (project / list_file).is_file():
        raise PlanError("subset.list_file", f"subset.list_file: {list_file} does not exist")
    sections = {"model": config["model"]} | {
        f"models.{name}": section for name, section in config["models"].items()
    }
    for key, model in sections.items():
        if model["trust_remote_code"] and not model["checkpoint"]:
            raise PlanError(
                f"{key}.trust_remote_code",
                f"{key}.trust_remote_code: only with {key}.checkpoint (a local directory "
                "whose code would run); set the checkpoint or drop trust_remote_code",
            )
    if isinstance(config["shards"], float):
        raise PlanError(
            "shards",
            f"shards: {config['shards']} must be a whole number written without a decimal "
            "point, e.g. shards: 2",
        )
    metrics = config["metrics"]
    if metrics["context_len_mode"] == "fixed" and not metrics["context_len_fixed"]:
        raise PlanError(
            "metrics.context_len_fixed",
            "metrics.context_len_fixed: required when context_len_mode is fixed",
        )


def _check_output_length(config: Mapping[str, Any]) -> None:
    """Refuse lengths from the pages' ground-truth text for a data set without one."""
    source = config["dataset"]["source"]
    if config["output_length"]["kind"] == "dataset" and source not in SOURCES_WITH_TEXT:
        raise PlanError(
            "output_length.kind",
            f"output_length.kind: dataset counts each page's ground-truth text, and "
            f"dataset.source {source} (a folder of images) has none; use lognormal or fixed, "
            f"or a source with text ({', '.join(SOURCES_WITH_TEXT)})",
        )

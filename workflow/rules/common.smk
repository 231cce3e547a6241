import dataclasses
import json
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from vlmprof.compare import workflow_refusal
from vlmprof.config_check import ConfigError, ConfigSources, check_config, load_schema
from vlmprof.data.source import (
    DatasetSourceError,
    count_pages,
    resolve_source,
    subset_warning,
)
from vlmprof.device_choice import (
    DeviceUnavailableError,
    choose_device,
    nvml_visible_gpus,
)
from vlmprof.models import ModelSpec, check_preset
from vlmprof.models.base import spec_params
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.variants.switches import (
    BASELINE,
    VariantError,
    changes_workload,
    check_batch_size,
    check_variant,
    check_workers,
    gate_check_spec,
    oracle_spec,
    variant_spec,
)
from vlmprof.variants.control import control_arm


def config_sources():
    """Where each configured value came from: the workflow's config file, then every
    --configfile in order, then --config (Snakemake merges them in that order)."""
    settings = workflow.config_settings
    given = [Path(path) for path in workflow.overwrite_configfiles]
    given_resolved = {path.resolve() for path in given}
    own = [
        path
        for path in workflow.configfiles
        if Path(path).resolve() not in given_resolved
        and not settings.replace_workflow_config
    ]
    return ConfigSources.read([*own, *given], settings.config)


CONFIG_SOURCES = config_sources()


def refuse(key, message, status=1):
    """Stop before any job with `message` about `key`, led by the file that set it, and exit
    status `status`.

    An exit with the message alone: a WorkflowError would add this file's path, a line
    number and a traceback to what is a mistake in the user's configuration.
    """
    print(CONFIG_SOURCES.label(key, message), file=sys.stderr)
    sys.exit(status)


try:
    check_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
        CONFIG_SOURCES,
    )
except ConfigError as error:
    sys.exit(str(error))

RUN = f"results/{config['run_name']}"
ENV = "../../environment.yml"
NOTEBOOKS = ["report", "stakeholder_summary"]


# The A/A control (vlmprof.variants.control): with variants, the baseline again as one
# more arm, its switches none, scheduled after the others (get_arms_before).
try:
    CONTROL = control_arm(config["variants"], config["variant_control"])
except VariantError as error:
    refuse("variant_control.name", str(error))
VARIANTS = {**config["variants"], **({CONTROL: {}} if CONTROL else {})}
# A pattern that matches no path when there are no variants.
VARIANT_PATTERN = "|".join(map(re.escape, VARIANTS)) or "(?!)"


# Other models profiled on the same pages with the same settings (`models:`, each a `model:`
# section), their results under models/<name>/, compared by cost per page.
MODELS = config["models"]
MODEL_PATTERN = "|".join(map(re.escape, MODELS)) or "(?!)"


wildcard_constraints:
    shard=r"\d+",
    notebook="|".join(NOTEBOOKS),
    variant=VARIANT_PATTERN,
    model=MODEL_PATTERN,


def resolve_run_device():
    """The device every job uses, decided once where the workflow is planned.

    Run locally, `auto` is judged on this machine, by the GPUs NVML sees (planning imports
    no torch). Through a cluster executor the planning host (a login node) says nothing
    about the compute nodes, so the device and preset must be written out; the GPU jobs
    check on their node, with torch, that CUDA is really there.
    """
    requested, preset = config["device"], config["model"]["preset"]
    if workflow.non_local_exec or workflow.remote_exec:
        if requested == "auto" or preset == "auto":
            refuse(
                "device" if requested == "auto" else "model.preset",
                "device and model.preset: set them explicitly (e.g. device: cuda, "
                "model.preset: full) when jobs run on a cluster; auto would be judged "
                "on the submitting host",
            )
        return requested
    try:
        return choose_device(requested, nvml_visible_gpus())
    except (DeviceUnavailableError, ValueError) as error:
        refuse("device", str(error))


DEVICE = resolve_run_device()
# The baseline's model settings: the run's own, on the released decode path.
BASELINE_SPEC = dataclasses.asdict(ModelSpec.from_config(config, DEVICE))
for key, check_setting in (
    ("batch_size", check_batch_size),
    ("workers", check_workers),
):
    try:
        check_setting(BASELINE_SPEC, key)
    except VariantError as error:
        refuse(key, str(error))
if not BASELINE_SPEC["checkpoint"]:
    try:
        check_preset(
            BASELINE_SPEC["name"], BASELINE_SPEC["preset"], BASELINE_SPEC["overrides"]
        )
    except ValueError as error:
        refuse("model", str(error))


def model_arm_specs():
    """Each `models:` entry's model settings: the run's own, with its `model:` section."""
    specs = {}
    for name, section in MODELS.items():
        key = f"models.{name}"
        if name == BASELINE:
            refuse(
                key,
                f"{key}: the name is taken by the run's own model; name it after it",
            )
        spec = dataclasses.asdict(
            ModelSpec.from_config({**config, "model": section}, DEVICE)
        )
        try:
            check_batch_size(spec, key)
            check_workers(spec, key)
        except VariantError as error:
            refuse(key, str(error))
        if not spec["checkpoint"]:
            try:
                check_preset(spec["name"], spec["preset"], spec["overrides"])
            except ValueError as error:
                refuse(key, f"{key}: {error}")
        specs[name] = spec
    return specs


MODEL_SPECS = model_arm_specs()


def all_cores():
    """Every core Snakemake was given; 1 where it has no total (cluster submission)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def resolve_dataset():
    """The data set's source, decided once here: what `auto` makes of dataset.path, and
    a refusal, before any job, of a missing or empty path or of synthetic pages that would
    be written into a user's folder; a warning when subset.n exceeds the pages there."""
    dataset = config["dataset"]
    try:
        resolved = resolve_source(dataset["source"], dataset["path"], Path.cwd())
    except DatasetSourceError as error:
        refuse(error.key, str(error))
    if resolved.note:
        logger.info(CONFIG_SOURCES.label("dataset.path", resolved.note))
    if not config["subset"]["list_file"]:
        pages = count_pages(
            resolved.source, dataset["path"], dataset["synthetic_pages"]
        )
        warning = subset_warning(config["subset"]["n"], pages, dataset["path"])
        if warning:
            logger.warning(CONFIG_SOURCES.label("subset.n", warning))
    return resolved.source


# Jobs and the run's record see the source that is profiled, never `auto`.
config["dataset"]["source"] = resolve_dataset()


def check_paths():
    """Fail before any job when a configured input path is missing."""
    dataset = config["dataset"]
    if dataset["source"] == "omnidocbench" and not dataset["image_root"]:
        refuse(
            "dataset.image_root", "dataset.image_root: required for source omnidocbench"
        )
    list_file = config["subset"]["list_file"]
    if list_file and not Path(list_file).is_file():
        refuse("subset.list_file", f"subset.list_file: {list_file} does not exist")
    if config["model"]["trust_remote_code"] and not config["model"]["checkpoint"]:
        refuse(
            "model.trust_remote_code",
            "model.trust_remote_code: only with model.checkpoint (a local directory whose "
            "code would run); set the checkpoint or drop trust_remote_code",
        )
    if isinstance(config["shards"], float):
        refuse(
            "shards",
            f"shards: {config['shards']} must be a whole number written without a decimal "
            "point, e.g. shards: 2",
        )
    metrics = config["metrics"]
    if metrics["context_len_mode"] == "fixed" and not metrics["context_len_fixed"]:
        refuse(
            "metrics.context_len_fixed",
            "metrics.context_len_fixed: required when context_len_mode is fixed",
        )


check_paths()


def as_json(value):
    """Params as sorted JSON text, so Snakemake tracks their changes reliably."""
    return json.dumps(value, sort_keys=True)


def run_config_json(wildcards):
    """The configuration a job's records come from, for provenance: the run's, with a
    compared model's own `model:` section for that model's jobs.

    Without the sections that name other runs (compare), other variants or other models, so
    adding a variant or a model does not redo the baseline's aggregation.
    """
    other = {"compare", "variants", "variant_gate", "variant_control", "models"}
    own = {key: value for key, value in config.items() if key not in other}
    model = getattr(wildcards, "model", None)
    if model is not None:
        own["model"] = MODELS[model]
    return as_json(own)


def model_spec(variant=BASELINE):
    """The model settings a model-building job of `variant` uses (JSON text)."""
    if variant == BASELINE:
        return as_json(spec_params(BASELINE_SPEC))
    return as_json(spec_params(variant_spec(BASELINE_SPEC, VARIANTS[variant])))


def job_variant(wildcards):
    """The job's variant: its wildcard, or the baseline for a rule without one."""
    return getattr(wildcards, "variant", BASELINE)


def job_model_spec(wildcards):
    """model_spec of the job's variant, or the model settings of its `models:` entry."""
    model = getattr(wildcards, "model", None)
    if model is not None:
        return as_json(spec_params(MODEL_SPECS[model]))
    return model_spec(job_variant(wildcards))


def arm_spec(variant):
    """The model settings of the baseline or a variant (a dict)."""
    if variant == BASELINE:
        return BASELINE_SPEC
    return variant_spec(BASELINE_SPEC, VARIANTS[variant])


# Whether the run is narrower than float32, so that every gated arm also runs in float32
# for the gate (gate_check); otherwise the arms' own outputs are the check.
GATE_CHECKED = gate_check_spec(BASELINE_SPEC) is not None


def job_check_spec(wildcards):
    """The model settings of the job's arm's gate check at float32 (JSON text)."""
    return as_json(spec_params(gate_check_spec(arm_spec(job_variant(wildcards)))))


def oracle_spec_json():
    """The model settings of the gate's oracle: the released code path in float64."""
    return as_json(spec_params(oracle_spec(BASELINE_SPEC)))


def check_variants():
    """Refuse, before any job, a variant that cannot run here (e.g. CUDA graphs on a CPU)."""
    for name, switches in VARIANTS.items():
        try:
            check_variant(name, BASELINE_SPEC, switches)
            spec = variant_spec(BASELINE_SPEC, switches)
            if not spec["checkpoint"]:
                check_preset(spec["name"], spec["preset"], spec["overrides"])
        except (VariantError, ValueError) as error:
            refuse(f"variants.{name}", str(error))


check_variants()


def variant_dir(variant):
    """Where a variant's records and metrics live; the baseline's are the run's own."""
    return RUN if variant == BASELINE else f"{RUN}/variants/{variant}"


def variant_is_sweep_point(variant):
    """Whether the variant changes the workload (its own FLOPs, no correctness gate)."""
    return changes_workload(BASELINE_SPEC, VARIANTS[variant])


def profile_settings():
    """What the timing pass does per image (JSON text); nothing else reaches that job."""
    return as_json(ProfileSettings.run_settings(config))


def dataset_input():
    """The manifest of a synthetic dataset, or the user's folder/JSON."""
    dataset = config["dataset"]
    if dataset["source"] == "synthetic":
        return f"{dataset['path']}/manifest.csv"
    return dataset["path"]


def model_dir(model):
    """Where a compared model's (`models:` entry's) results live."""
    return f"{RUN}/models/{model}"


def job_dir(wildcards):
    """Where the job's arm keeps its results: its compared model's, its variant's, or the
    run's own."""
    model = getattr(wildcards, "model", None)
    return variant_dir(job_variant(wildcards)) if model is None else model_dir(model)


def shard_files(directory, suffix):
    """Every shard's file with `suffix` (.jsonl records or .outputs.pt) of the arm whose
    results are in `directory`."""
    pattern = f"{directory}/runs/shard-{{shard}}{suffix}"
    return expand(pattern, shard=range(config["shards"]))


def get_arms_before(wildcards):
    """What a variant's timing pass waits for: nothing, except the control's, which waits
    for the records of the baseline, every variant and every compared model, so its drift
    spans their time."""
    if wildcards.variant != CONTROL:
        return []
    others = [
        variant_dir(BASELINE),
        *(variant_dir(v) for v in VARIANTS if v != CONTROL),
    ]
    others += [model_dir(model) for model in MODELS]
    return [path for arm in others for path in shard_files(arm, ".jsonl")]


def get_shard_records(wildcards):
    """Every shard's run records of the job's variant or compared model (the baseline
    without a wildcard)."""
    return shard_files(job_dir(wildcards), ".jsonl")


def get_static_compute(wildcards):
    """The FLOP count a job's MFU uses: the baseline's, unless its variant changes the
    workload (a sweep point counts its own) or it is another model's."""
    variant = job_variant(wildcards)
    sweep_point = variant != BASELINE and variant_is_sweep_point(variant)
    own_count = getattr(wildcards, "model", None) is not None or sweep_point
    return f"{job_dir(wildcards) if own_count else RUN}/static/static_compute.json"


def get_gate_against(wildcards):
    """What a variant's timing pass is fed for the gate: the baseline's outputs of its
    shard, unless the variant is a sweep point (another workload, not gated)."""
    if variant_is_sweep_point(wildcards.variant):
        return {}
    return {"against": f"{RUN}/runs/shard-{wildcards.shard}.outputs.pt"}


def get_gate_outputs(wildcards):
    """What a variant's gate compares, every shard: the baseline's and the variant's
    outputs, and, unless it is a sweep point, the oracle's and (for a run narrower than
    float32) both arms' float32 checks."""
    outputs = {
        "baseline": shard_files(variant_dir(BASELINE), ".outputs.pt"),
        "variant": shard_files(job_dir(wildcards), ".outputs.pt"),
    }
    if variant_is_sweep_point(wildcards.variant):
        return outputs
    outputs["oracle"] = shard_files(variant_dir(BASELINE), ".oracle.pt")
    if GATE_CHECKED:
        outputs["baseline_check"] = shard_files(variant_dir(BASELINE), ".check.pt")
        outputs["variant_check"] = shard_files(job_dir(wildcards), ".check.pt")
    return outputs


def get_variant_results(kind):
    """Every variant's metrics.json or gate.json, in config order."""
    return [f"{RUN}/variants/{name}/{kind}" for name in VARIANTS]


def get_operator_outputs(wildcards):
    """The baseline's operator pass (timeline), when the pass is enabled."""
    own_model = getattr(wildcards, "model", None) is None
    if (
        config["operators"]["enabled"]
        and own_model
        and job_variant(wildcards) == BASELINE
    ):
        return {
            "timeline": f"{RUN}/ops/timeline.json",
            "operators": f"{RUN}/ops/operators.csv",
        }
    return {}


def get_model_comparison(wildcards):
    """The comparison of models by cost per page, when the run compares any."""
    return {"models": f"{RUN}/models/comparison.json"} if MODELS else {}


def get_final_output():
    """Everything a run publishes."""
    outputs = [f"{RUN}/publish/index.html", f"{RUN}/figures"]
    if config["operators"]["nsys"]:
        outputs.append(f"{RUN}/ops/nsys/summary.txt")
    return outputs


def compare_baseline():
    """The results folder of the run named by compare.baseline (the compare target's)."""
    baseline = config["compare"]["baseline"]
    if not baseline:
        refuse(
            "compare.baseline",
            "compare.baseline: set it to the results folder of the run to compare against, "
            "e.g. --config compare='{baseline: results/other}'",
        )
    return baseline


def get_compare_baseline(wildcards):
    """The baseline's metrics.json, once judged comparable with this run where the workflow
    is planned (input functions run then, for the jobs a target needs): a refusal exits
    with status 2, as vlmprof-compare does, before any job runs."""
    metrics = f"{compare_baseline()}/metrics.json"
    if not config["compare"]["force"]:
        planned = {
            **json.loads(run_config_json(wildcards)),
            "resolved": json.loads(job_model_spec(wildcards)),
        }
        try:
            refused = workflow_refusal(metrics, rules.aggregate.output.metrics, planned)
        except (OSError, ValueError) as error:
            refused = str(error)
        if refused is not None:
            refuse("compare.baseline", refused, status=2)
    return metrics

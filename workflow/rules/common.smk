import json
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from vlmprof.models.deepseek_ocr_dims import preset_dims
from vlmprof.runtime.device import DeviceUnavailableError, resolve_device

validate(config, "../schemas/config.schema.yaml")

RUN = f"results/{config['run_name']}"
ENV = "../../environment.yml"
NOTEBOOKS = ["report", "stakeholder_summary"]


wildcard_constraints:
    shard=r"\d+",
    notebook="|".join(NOTEBOOKS),


def resolve_run_device():
    """The device every job uses, decided once where the workflow is planned.

    Run locally, `auto` is judged on this machine. Through a cluster executor the planning
    host (a login node) says nothing about the compute nodes, so the device and preset
    must be written out; the GPU jobs check on their node that CUDA is really there.
    """
    requested, preset = config["device"], config["model"]["preset"]
    if workflow.non_local_exec or workflow.remote_exec:
        if requested == "auto" or preset == "auto":
            raise WorkflowError(
                "device and model.preset: set them explicitly (e.g. device: cuda, "
                "model.preset: full) when jobs run on a cluster; auto would be judged "
                "on the submitting host"
            )
        return requested, preset
    try:
        device = resolve_device(requested)
    except (DeviceUnavailableError, ValueError) as error:
        raise WorkflowError(str(error)) from None
    if preset == "auto":
        preset = "full" if device.startswith("cuda") else "small"
    return device, preset


DEVICE, PRESET = resolve_run_device()
if not config["model"]["checkpoint"]:
    try:
        preset_dims(PRESET, config["model"]["overrides"])
    except ValueError as error:
        raise WorkflowError(str(error)) from None


def all_cores():
    """Every core Snakemake was given; 1 where it has no total (cluster submission)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def check_paths():
    """Fail before any job when a configured input path is missing."""
    dataset = config["dataset"]
    if dataset["source"] != "synthetic" and not Path(dataset["path"]).exists():
        raise WorkflowError(
            f"dataset.path: {dataset['path']} does not exist; point it at a folder of "
            "images (source: folder) or an OmniDocBench JSON file (source: omnidocbench)"
        )
    if dataset["source"] == "omnidocbench" and not dataset["image_root"]:
        raise WorkflowError("dataset.image_root: required for source omnidocbench")
    list_file = config["subset"]["list_file"]
    if list_file and not Path(list_file).is_file():
        raise WorkflowError(f"subset.list_file: {list_file} does not exist")
    metrics = config["metrics"]
    if metrics["context_len_mode"] == "fixed" and not metrics["context_len_fixed"]:
        raise WorkflowError(
            "metrics.context_len_fixed: required when context_len_mode is fixed"
        )


check_paths()


def as_json(value):
    """Params as sorted JSON text, so Snakemake tracks their changes reliably."""
    return json.dumps(value, sort_keys=True)


def run_config_json():
    """The run's configuration for provenance; the compare section only names another run."""
    return as_json({key: value for key, value in config.items() if key != "compare"})


def model_spec():
    """The model settings every model-building job uses (JSON text)."""
    model = config["model"]
    return as_json(
        {
            "name": model["name"],
            "preset": PRESET,
            "overrides": model["overrides"],
            "device": DEVICE,
            "dtype": config["dtype"],
            "attn_implementation": model["attn_implementation"],
            "experts_implementation": model["experts_implementation"],
            "mode": config["mode"],
            "max_crops": config["max_crops"],
            "seed": model["seed"],
            "checkpoint": model["checkpoint"],
        }
    )


def profile_settings():
    """What the timing pass does per image (JSON text); nothing else reaches that job."""
    keys = [
        "repeats",
        "warmup_rounds",
        "warmup_synthetic",
        "warmup_per_image",
        "max_new_tokens",
        "ignore_eos",
    ]
    settings = {key: config[key] for key in keys}
    settings["max_pixels"] = config["dataset"]["max_pixels"]
    settings["run_id"] = config["run_name"]
    settings["telemetry"] = config["telemetry"]["enabled"]
    settings["telemetry_interval_ms"] = config["telemetry"]["interval_ms"]
    return as_json(settings)


def dataset_input():
    """The manifest of a synthetic dataset, or the user's folder/JSON."""
    dataset = config["dataset"]
    if dataset["source"] == "synthetic":
        return f"{dataset['path']}/manifest.csv"
    return dataset["path"]


def get_shard_records(wildcards):
    """Every shard's run records."""
    return expand(f"{RUN}/runs/shard-{{shard}}.jsonl", shard=range(config["shards"]))


def get_operator_outputs(wildcards):
    """The operator pass's timeline, when the pass is enabled."""
    if config["operators"]["enabled"]:
        return {
            "timeline": f"{RUN}/ops/timeline.json",
            "operators": f"{RUN}/ops/operators.csv",
        }
    return {}


def get_final_output():
    """Everything a run publishes."""
    outputs = [f"{RUN}/publish/index.html", f"{RUN}/figures"]
    if config["operators"]["nsys"]:
        outputs.append(f"{RUN}/ops/nsys/summary.txt")
    return outputs


def get_compare_baseline(wildcards):
    """metrics.json of the run named by compare.baseline."""
    baseline = config["compare"]["baseline"]
    if not baseline:
        raise WorkflowError(
            "compare.baseline: set it to the results folder of the run to compare against, "
            "e.g. --config compare='{baseline: results/other}'"
        )
    return f"{baseline}/metrics.json"

import json
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from vlmprof.compare import workflow_refusal
from vlmprof.config_check import ConfigError, ConfigSources, check_config, load_schema
from vlmprof.device_choice import nvml_visible_gpus
from vlmprof.plan import PlanError, RunPlan, compare_folder, run_device

CONFIG_SOURCES = ConfigSources.of_workflow(workflow)


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

# The run's arms (vlmprof.plan): the baseline, each variant, the A/A control and each
# compared model on its released and its best path, every refusal made here, before any
# job.
try:
    cluster = workflow.non_local_exec or workflow.remote_exec
    device = run_device(config, cluster, nvml_visible_gpus)
    PLAN = RunPlan.from_config(config, device, Path.cwd())
except PlanError as error:
    refuse(error.key, str(error), error.status)
for note in PLAN.notes:
    (logger.warning if note.warning else logger.info)(
        CONFIG_SOURCES.label(note.key, note.message)
    )
# Jobs and the run's record see the source that is profiled, never `auto`.
config["dataset"]["source"] = PLAN.dataset_source

RUN = f"results/{config['run_name']}"
ENV = "../../environment.yml"
NOTEBOOKS = ["report", "stakeholder_summary"]
BASELINE = PLAN.baseline
VARIANTS = PLAN.of_kind("variant", "control")
COMPARED = PLAN.compared


# {arm} is an arm's folder under the run: empty for the baseline (its results are the run's
# own), variants/<name>/, models/<name>/ or models/<name>/best/. A rule for some arms only
# narrows it.
wildcard_constraints:
    shard=r"\d+",
    notebook="|".join(NOTEBOOKS),
    arm=PLAN.folders(),


def all_cores():
    """Every core Snakemake was given; 1 where it has no total (cluster submission)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def as_json(value):
    """Params as sorted JSON text, so Snakemake tracks their changes reliably."""
    return json.dumps(value, sort_keys=True)


def job_arm(wildcards):
    """The arm a job of a rule over {arm} runs for."""
    return PLAN.at(wildcards.arm)


def run_params(part, of=lambda arm: arm.run):
    """A params function: the `part` ("spec" or "settings") of what the job's arm runs, or
    of its run `of` picks (its gate check, say), as JSON text."""
    return lambda wildcards: as_json(of(job_arm(wildcards)).params()[part])


def arm_label(wildcards):
    """The report's subcategory of an arm's tagged output: none for the baseline's."""
    return job_arm(wildcards).label or None


def recorded_config(wildcards):
    """The configuration the job's arm's records come from, for provenance."""
    return as_json(job_arm(wildcards).config)


def dataset_input():
    """The manifest of a synthetic dataset, or the user's folder/JSON."""
    dataset = config["dataset"]
    if dataset["source"] == "synthetic":
        return f"{dataset['path']}/manifest.csv"
    return dataset["path"]


def shard_files(arm, suffix):
    """Every shard's file with `suffix` (.jsonl records, .outputs.pt, ...) of `arm`."""
    pattern = f"{RUN}/{arm.folder}runs/shard-{{shard}}{suffix}"
    return expand(pattern, shard=range(config["shards"]))


def get_records_before(wildcards):
    """The records of the arms the job's arm's timing waits for (the control's: every
    other arm's, so its drift spans their time)."""
    arm = job_arm(wildcards)
    return [
        path
        for name in arm.waits_for
        for path in shard_files(PLAN.arms[name], ".jsonl")
    ]


def gate_reference(arm):
    """The arm whose outputs the gate judges `arm` against (the baseline's for a variant, a
    model's released arm for its best path); the baseline for an arm not gated."""
    return PLAN.arms[arm.reference or BASELINE.name]


def get_fed_outputs(wildcards):
    """The outputs whose tokens the job's gate run is fed: its arm's reference's, or its
    arm's own for a reference (the oracle's runs and a reference's float32 check)."""
    arm = job_arm(wildcards)
    fed = PLAN.arms[arm.reference] if arm.gated else arm
    return f"{RUN}/{fed.folder}runs/shard-{wildcards.shard}.outputs.pt"


def get_gate_against(wildcards):
    """The reference's outputs of the job's shard, for a gated arm (its reference run is
    fed their tokens); nothing for another arm."""
    return {"against": get_fed_outputs(wildcards)} if job_arm(wildcards).gated else {}


def get_gate_outputs(wildcards):
    """What an arm's gate compares, every shard: its reference's and its outputs and,
    unless it is a sweep point, its records, the reference's oracle's and (for a run
    narrower than float32) both arms' float32 checks (its own outputs where it runs in
    float32)."""
    arm = job_arm(wildcards)
    reference = gate_reference(arm)
    outputs = {
        "baseline": shard_files(reference, ".outputs.pt"),
        "variant": shard_files(arm, ".outputs.pt"),
    }
    if not arm.gated:
        return outputs
    # Its records say which pages did not fit (ran out of memory): those are not judged.
    outputs["records"] = shard_files(arm, ".jsonl")
    outputs["oracle"] = shard_files(reference, ".oracle.pt")
    if reference.check is not None:
        outputs["baseline_check"] = shard_files(reference, ".check.pt")
        outputs["variant_check"] = shard_files(
            arm, ".check.pt" if arm.check else ".outputs.pt"
        )
    return outputs


def get_static_compute(wildcards):
    """The FLOP count the job's arm's MFU uses: its own, or the baseline's."""
    counted = PLAN.arms[job_arm(wildcards).flops_of]
    return f"{RUN}/{counted.folder}static/static_compute.json"


def get_operator_outputs(wildcards):
    """The operator pass (timeline, operators) the job's arm's aggregation reads, if any."""
    if not job_arm(wildcards).operators:
        return {}
    return {
        "timeline": f"{RUN}/ops/timeline.json",
        "operators": f"{RUN}/ops/operators.csv",
    }


def arm_results(arms, path):
    """`path` under each of `arms`' folders."""
    return [f"{RUN}/{arm.folder}{path}" for arm in arms]


def get_model_comparison(wildcards):
    """The comparison of models by cost per page, when the run compares any."""
    return {"models": f"{RUN}/models/comparison.json"} if COMPARED else {}


def get_final_output():
    """Everything a run publishes."""
    outputs = [f"{RUN}/publish/index.html", f"{RUN}/figures"]
    if config["operators"]["nsys"]:
        outputs.append(f"{RUN}/ops/nsys/summary.txt")
    return outputs


def compare_baseline():
    """The results folder of the run named by compare.baseline (the compare target's)."""
    try:
        return compare_folder(config)
    except PlanError as error:
        refuse(error.key, str(error), error.status)


def get_compare_baseline(wildcards):
    """The baseline's metrics.json, once judged comparable with this run where the workflow
    is planned (input functions run then, for the jobs a target needs): a refusal exits
    with status 2, as vlmprof-compare does, before any job runs."""
    metrics = f"{compare_baseline()}/metrics.json"
    if not config["compare"]["force"]:
        planned = {**BASELINE.config, "resolved": BASELINE.run.resolved()}
        try:
            refused = workflow_refusal(metrics, f"{RUN}/metrics.json", planned)
        except (OSError, ValueError) as error:
            refused = str(error)
        if refused is not None:
            refuse("compare.baseline", refused, status=2)
    return metrics

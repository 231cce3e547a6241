# The timing pass of one shard of an arm (every arm: the baseline, each variant, the A/A
# control and each compared model, on the same pages). A gated arm's reference run is fed
# the baseline's tokens; the control's shards start only once every other arm's records
# exist.
rule profile_shard:
    input:
        unpack(get_gate_against),
        subset=rules.select_subset.output.subset,
        after=get_records_before,
    output:
        records=f"{RUN}/{{arm}}runs/shard-{{shard}}.jsonl",
        outputs=f"{RUN}/{{arm}}runs/shard-{{shard}}.outputs.pt",
    log:
        f"{RUN}/logs/{{arm}}profile_shard-{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/{{arm}}profile_shard-{{shard}}.tsv"
    conda:
        ENV
    resources:
        gpu=1,
    params:
        spec=run_params("spec"),
        settings=run_params("settings"),
        shards=config["shards"],
    script:
        "../scripts/profile_shard.py"


# The operator pass: the baseline's, read by its aggregation; another arm's on request (a
# target such as results/<run>/variants/<name>/ops/operators.md): what is left in each stage
# after it.
rule operator_profile:
    input:
        subset=rules.select_subset.output.subset,
    output:
        operators=f"{RUN}/{{arm}}ops/operators.csv",
        markdown=report(
            f"{RUN}/{{arm}}ops/operators.md",
            caption="../report/operators.rst",
            category="Operators",
            subcategory=arm_label,
        ),
        timeline=f"{RUN}/{{arm}}ops/timeline.json",
        traces=directory(f"{RUN}/{{arm}}ops/traces"),
    log:
        f"{RUN}/logs/{{arm}}operator_profile.log",
    benchmark:
        f"{RUN}/benchmarks/{{arm}}operator_profile.tsv"
    conda:
        ENV
    resources:
        gpu=1,
    params:
        spec=run_params("spec"),
        images=config["operators"]["images"],
        top_n=config["operators"]["top_n"],
        max_new_tokens=config["operators"]["max_new_tokens"],
        warmup_rounds=config["warmup_rounds"],
        max_pixels=config["dataset"]["max_pixels"],
    script:
        "../scripts/operator_profile.py"


rule nsight_systems:
    input:
        subset=rules.select_subset.output.subset,
    output:
        summary=f"{RUN}/ops/nsys/summary.txt",
    log:
        f"{RUN}/logs/nsight_systems.log",
    conda:
        ENV
    resources:
        gpu=1,
    params:
        spec=as_json(BASELINE.run.params()["spec"]),
        settings=as_json(BASELINE.run.params()["settings"]),
    script:
        "../scripts/nsight_systems.py"

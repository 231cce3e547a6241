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


# The correctness gate's runs fed a reference's tokens (the baseline's, or a compared model's
# released path's for its best path): the reference's oracle (its released code path in
# float64) and, for a run narrower than float32, each gated arm's (and each reference's)
# code path in float32.
rule gate_oracle:
    input:
        subset=rules.select_subset.output.subset,
        against=get_fed_outputs,
    output:
        outputs=f"{RUN}/{{arm}}runs/shard-{{shard}}.oracle.pt",
    log:
        f"{RUN}/logs/{{arm}}gate_oracle-{{shard}}.log",
    wildcard_constraints:
        arm=PLAN.folders(lambda arm: arm.name in PLAN.references),
    conda:
        ENV
    resources:
        gpu=1,
    params:
        spec=run_params("spec", lambda arm: arm.oracle),
        settings=run_params("settings", lambda arm: arm.oracle),
        shards=config["shards"],
        pages=config["variant_gate"]["pages"],
    script:
        "../scripts/gate_reference.py"


use rule gate_oracle as gate_check with:
    output:
        outputs=f"{RUN}/{{arm}}runs/shard-{{shard}}.check.pt",
    log:
        f"{RUN}/logs/{{arm}}gate_check-{{shard}}.log",
    wildcard_constraints:
        arm=PLAN.folders(lambda arm: arm.check is not None),
    params:
        spec=run_params("spec", lambda arm: arm.check),
        settings=run_params("settings", lambda arm: arm.check),
        shards=config["shards"],
        pages=config["variant_gate"]["pages"],


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

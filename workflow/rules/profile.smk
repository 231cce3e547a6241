rule profile_shard:
    input:
        subset=rules.select_subset.output.subset,
    output:
        records=f"{RUN}/runs/shard-{{shard}}.jsonl",
    log:
        f"{RUN}/logs/profile_shard-{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/profile_shard-{{shard}}.tsv"
    conda:
        ENV
    resources:
        gpu=1,
    params:
        spec=model_spec(),
        settings=profile_settings(),
        shards=config["shards"],
    script:
        "../scripts/profile_shard.py"


rule operator_profile:
    input:
        subset=rules.select_subset.output.subset,
    output:
        operators=f"{RUN}/ops/operators.csv",
        markdown=report(
            f"{RUN}/ops/operators.md",
            caption="../report/operators.rst",
            category="Operators",
        ),
        timeline=f"{RUN}/ops/timeline.json",
        traces=directory(f"{RUN}/ops/traces"),
    log:
        f"{RUN}/logs/operator_profile.log",
    benchmark:
        f"{RUN}/benchmarks/operator_profile.tsv"
    conda:
        ENV
    resources:
        gpu=1,
    params:
        spec=model_spec(),
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
        spec=model_spec(),
        settings=profile_settings(),
    script:
        "../scripts/nsight_systems.py"

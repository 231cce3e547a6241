rule profile_shard:
    input:
        subset=rules.select_subset.output.subset,
    output:
        records=f"{RUN}/runs/shard-{{shard}}.jsonl",
        outputs=f"{RUN}/runs/shard-{{shard}}.outputs.pt",
    log:
        f"{RUN}/logs/profile_shard-{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/profile_shard-{{shard}}.tsv"
    conda:
        ENV
    resources:
        gpu=1,
    params:
        spec=job_model_spec,
        settings=profile_settings(),
        shards=config["shards"],
    script:
        "../scripts/profile_shard.py"


# The same timing pass for each configured variant, on the same pages and settings; the
# A/A control's shards start only once every other arm's records exist.
use rule profile_shard as profile_shard_variant with:
    input:
        unpack(get_gate_against),
        subset=rules.select_subset.output.subset,
        after=get_arms_before,
    output:
        records=f"{RUN}/variants/{{variant}}/runs/shard-{{shard}}.jsonl",
        outputs=f"{RUN}/variants/{{variant}}/runs/shard-{{shard}}.outputs.pt",
    log:
        f"{RUN}/logs/profile_shard-{{variant}}-{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/profile_shard-{{variant}}-{{shard}}.tsv"


# The same timing pass for each compared model (`models:`), on the same pages and settings.
use rule profile_shard as profile_shard_model with:
    output:
        records=f"{RUN}/models/{{model}}/runs/shard-{{shard}}.jsonl",
        outputs=f"{RUN}/models/{{model}}/runs/shard-{{shard}}.outputs.pt",
    log:
        f"{RUN}/logs/profile_shard-model-{{model}}-{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/profile_shard-model-{{model}}-{{shard}}.tsv"


# The correctness gate's runs fed the baseline's tokens: the oracle (the released code path
# in float64) and, for a run narrower than float32, each gated arm's code path in float32.
rule gate_oracle:
    input:
        subset=rules.select_subset.output.subset,
        against=rules.profile_shard.output.outputs,
    output:
        outputs=f"{RUN}/runs/shard-{{shard}}.oracle.pt",
    log:
        f"{RUN}/logs/gate_oracle-{{shard}}.log",
    conda:
        ENV
    resources:
        gpu=1,
    params:
        spec=oracle_spec_json(),
        settings=profile_settings(),
        shards=config["shards"],
    script:
        "../scripts/gate_reference.py"


use rule gate_oracle as gate_check with:
    output:
        outputs=f"{RUN}/runs/shard-{{shard}}.check.pt",
    log:
        f"{RUN}/logs/gate_check-{{shard}}.log",
    params:
        spec=job_check_spec,
        settings=profile_settings(),
        shards=config["shards"],


use rule gate_oracle as gate_check_variant with:
    output:
        outputs=f"{RUN}/variants/{{variant}}/runs/shard-{{shard}}.check.pt",
    log:
        f"{RUN}/logs/gate_check-{{variant}}-{{shard}}.log",
    params:
        spec=job_check_spec,
        settings=profile_settings(),
        shards=config["shards"],


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
        spec=job_model_spec,
        images=config["operators"]["images"],
        top_n=config["operators"]["top_n"],
        max_new_tokens=config["operators"]["max_new_tokens"],
        warmup_rounds=config["warmup_rounds"],
        max_pixels=config["dataset"]["max_pixels"],
    script:
        "../scripts/operator_profile.py"


# A variant's operator profile, on request (a target such as
# results/<run>/variants/<name>/ops/operators.md): what is left in each stage after it.
use rule operator_profile as operator_profile_variant with:
    output:
        operators=f"{RUN}/variants/{{variant}}/ops/operators.csv",
        markdown=f"{RUN}/variants/{{variant}}/ops/operators.md",
        timeline=f"{RUN}/variants/{{variant}}/ops/timeline.json",
        traces=directory(f"{RUN}/variants/{{variant}}/ops/traces"),
    log:
        f"{RUN}/logs/operator_profile-{{variant}}.log",
    benchmark:
        f"{RUN}/benchmarks/operator_profile-{{variant}}.tsv"


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
        spec=job_model_spec,
        settings=profile_settings(),
    script:
        "../scripts/nsight_systems.py"

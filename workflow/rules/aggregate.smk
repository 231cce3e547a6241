rule aggregate:
    input:
        unpack(get_operator_outputs),
        records=get_shard_records,
        subset=rules.select_subset.output.subset,
        static=get_static_compute,
        calibration=rules.calibrate_peaks.output.calibration,
    output:
        metrics=f"{RUN}/metrics.json",
        stage_ms=report(
            f"{RUN}/tables/stage_ms.csv",
            caption="../report/stage_ms.rst",
            category="Timing",
        ),
        mfu=report(
            f"{RUN}/tables/mfu.csv", caption="../report/mfu.rst", category="Compute"
        ),
        mbu=report(
            f"{RUN}/tables/mbu.csv", caption="../report/mbu.rst", category="Compute"
        ),
        per_image=f"{RUN}/tables/per_image.csv",
        per_category=report(
            f"{RUN}/tables/per_category.csv",
            caption="../report/per_category.rst",
            category="Timing",
        ),
        per_record=f"{RUN}/tables/per_record.csv",
    log:
        f"{RUN}/logs/aggregate.log",
    conda:
        ENV
    params:
        spec=job_model_spec,
        config=run_config_json,
        peak_tflops=config["metrics"]["peak_tflops"],
        peak_bandwidth_tbps=config["metrics"]["peak_bandwidth_tbps"],
        context_len_mode=config["metrics"]["context_len_mode"],
        context_len_fixed=config["metrics"]["context_len_fixed"],
        tolerance=config["metrics"]["repeatability_tolerance"],
        device_requested=config["device"],
    script:
        "../scripts/aggregate.py"


# Each variant aggregated like the baseline, against its FLOP count and the same peaks.
use rule aggregate as aggregate_variant with:
    output:
        metrics=f"{RUN}/variants/{{variant}}/metrics.json",
        stage_ms=f"{RUN}/variants/{{variant}}/tables/stage_ms.csv",
        mfu=f"{RUN}/variants/{{variant}}/tables/mfu.csv",
        mbu=f"{RUN}/variants/{{variant}}/tables/mbu.csv",
        per_image=f"{RUN}/variants/{{variant}}/tables/per_image.csv",
        per_category=f"{RUN}/variants/{{variant}}/tables/per_category.csv",
        per_record=f"{RUN}/variants/{{variant}}/tables/per_record.csv",
    log:
        f"{RUN}/logs/aggregate-{{variant}}.log",


# Each compared model aggregated like the baseline, against its own FLOP count.
use rule aggregate as aggregate_model with:
    output:
        metrics=f"{RUN}/models/{{model}}/metrics.json",
        stage_ms=f"{RUN}/models/{{model}}/tables/stage_ms.csv",
        mfu=f"{RUN}/models/{{model}}/tables/mfu.csv",
        mbu=f"{RUN}/models/{{model}}/tables/mbu.csv",
        per_image=f"{RUN}/models/{{model}}/tables/per_image.csv",
        per_category=f"{RUN}/models/{{model}}/tables/per_category.csv",
        per_record=f"{RUN}/models/{{model}}/tables/per_record.csv",
    log:
        f"{RUN}/logs/aggregate-model-{{model}}.log",


rule compare_models:
    input:
        baseline=rules.aggregate.output.metrics,
        metrics=expand(f"{RUN}/models/{{model}}/metrics.json", model=MODELS),
    output:
        json=f"{RUN}/models/comparison.json",
        csv=f"{RUN}/models/comparison.csv",
        md=report(
            f"{RUN}/models/comparison.md",
            caption="../report/models.rst",
            category="Models",
        ),
    log:
        f"{RUN}/logs/compare_models.log",
    conda:
        ENV
    params:
        names=list(MODELS),
    script:
        "../scripts/compare_models.py"


rule variant_gate:
    input:
        unpack(get_gate_outputs),
    output:
        gate=f"{RUN}/variants/{{variant}}/gate.json",
    log:
        f"{RUN}/logs/variant_gate-{{variant}}.log",
    conda:
        ENV
    params:
        code_path_factor=config["variant_gate"]["code_path_factor"],
        precision_factor=config["variant_gate"]["precision_factor"],
        sweep_point=lambda wildcards: variant_is_sweep_point(wildcards.variant),
        switches=lambda wildcards: as_json(VARIANTS[wildcards.variant]),
    script:
        "../scripts/variant_gate.py"


rule compare_variants:
    input:
        baseline=rules.aggregate.output.metrics,
        baseline_pages=rules.aggregate.output.per_image,
        metrics=get_variant_results("metrics.json"),
        pages=get_variant_results("tables/per_image.csv"),
        gates=get_variant_results("gate.json"),
    output:
        json=f"{RUN}/variants/comparison.json",
        csv=f"{RUN}/variants/comparison.csv",
        md=report(
            f"{RUN}/variants/comparison.md",
            caption="../report/variants.rst",
            category="Variants",
        ),
    log:
        f"{RUN}/logs/compare_variants.log",
    conda:
        ENV
    params:
        names=list(VARIANTS),
        switches=as_json(VARIANTS),
        control=CONTROL,
    script:
        "../scripts/compare_variants.py"


# Refused at planning where both runs' metrics say they cannot be compared (see
# get_compare_baseline); refused by the job otherwise. compare.md is marked `update`:
# Snakemake keeps it through the job and puts it back when the job fails, so a refusal
# leaves the previous comparison in place.
rule compare:
    input:
        run=rules.aggregate.output.metrics,
        run_pages=rules.aggregate.output.per_image,
        baseline=get_compare_baseline,
        baseline_pages=lambda wildcards: f"{compare_baseline()}/tables/per_image.csv",
    output:
        table=update(
            report(
                f"{RUN}/compare/compare.md",
                caption="../report/compare.rst",
                category="Timing",
            )
        ),
    log:
        f"{RUN}/logs/compare.log",
    conda:
        ENV
    params:
        tolerance=config["compare"]["tolerance"],
        force=config["compare"]["force"],
        include_host_stages=config["compare"]["include_host_stages"],
    script:
        "../scripts/compare.py"

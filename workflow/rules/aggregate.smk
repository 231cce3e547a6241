# Every arm's records aggregated: metrics.json and tables, against the FLOP count it uses
# and the same peaks.
rule aggregate:
    input:
        unpack(get_operator_outputs),
        records=lambda wildcards: shard_files(job_arm(wildcards), ".jsonl"),
        subset=rules.select_subset.output.subset,
        static=get_static_compute,
        calibration=rules.calibrate_peaks.output.calibration,
    output:
        metrics=f"{RUN}/{{arm}}metrics.json",
        stage_ms=report(
            f"{RUN}/{{arm}}tables/stage_ms.csv",
            caption="../report/stage_ms.rst",
            category="Timing",
            subcategory=arm_label,
        ),
        mfu=report(
            f"{RUN}/{{arm}}tables/mfu.csv",
            caption="../report/mfu.rst",
            category="Compute",
            subcategory=arm_label,
        ),
        mbu=report(
            f"{RUN}/{{arm}}tables/mbu.csv",
            caption="../report/mbu.rst",
            category="Compute",
            subcategory=arm_label,
        ),
        per_image=f"{RUN}/{{arm}}tables/per_image.csv",
        per_category=report(
            f"{RUN}/{{arm}}tables/per_category.csv",
            caption="../report/per_category.rst",
            category="Timing",
            subcategory=arm_label,
        ),
        per_record=f"{RUN}/{{arm}}tables/per_record.csv",
    log:
        f"{RUN}/logs/{{arm}}aggregate.log",
    conda:
        ENV
    params:
        spec=run_params("spec"),
        settings=run_params("settings"),
        config=recorded_config,
        peak_tflops=config["metrics"]["peak_tflops"],
        peak_bandwidth_tbps=config["metrics"]["peak_bandwidth_tbps"],
        context_len_mode=config["metrics"]["context_len_mode"],
        context_len_fixed=config["metrics"]["context_len_fixed"],
        tolerance=config["metrics"]["repeatability_tolerance"],
        device_requested=config["device"],
    script:
        "../scripts/aggregate.py"


# The compared models by cost per page, each on its released and its best path, a best
# path counted only where its gate passed.
rule compare_models:
    input:
        metrics=arm_results(COMPARED, "metrics.json"),
        gates=arm_results([arm for arm in COMPARED if arm.gated], "gate.json"),
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
        arms=as_json([arm.compared_as for arm in COMPARED]),
    script:
        "../scripts/compare_models.py"


rule compare_variants:
    input:
        baseline=f"{RUN}/metrics.json",
        baseline_pages=f"{RUN}/tables/per_image.csv",
        metrics=arm_results(VARIANTS, "metrics.json"),
        pages=arm_results(VARIANTS, "tables/per_image.csv"),
        gates=arm_results(VARIANTS, "gate.json"),
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
        names=[arm.name for arm in VARIANTS],
        switches=as_json({arm.name: arm.switches for arm in VARIANTS}),
        control=PLAN.control,
    script:
        "../scripts/compare_variants.py"


# Refused at planning where both runs' metrics say they cannot be compared (see
# get_compare_baseline); refused by the job otherwise. compare.md is marked `update`:
# Snakemake keeps it through the job and puts it back when the job fails, so a refusal
# leaves the previous comparison in place.
rule compare:
    input:
        run=f"{RUN}/metrics.json",
        run_pages=f"{RUN}/tables/per_image.csv",
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

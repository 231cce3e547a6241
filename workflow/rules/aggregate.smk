rule aggregate:
    input:
        unpack(get_operator_outputs),
        records=get_shard_records,
        subset=rules.select_subset.output.subset,
        static=rules.static_flops.output.json,
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
        per_record=f"{RUN}/tables/per_record.csv",
    log:
        f"{RUN}/logs/aggregate.log",
    conda:
        ENV
    params:
        spec=model_spec(),
        config=run_config_json(),
        peak_tflops=config["metrics"]["peak_tflops"],
        peak_bandwidth_tbps=config["metrics"]["peak_bandwidth_tbps"],
        context_len_mode=config["metrics"]["context_len_mode"],
        context_len_fixed=config["metrics"]["context_len_fixed"],
        tolerance=config["metrics"]["repeatability_tolerance"],
        device_requested=config["device"],
    script:
        "../scripts/aggregate.py"


rule compare:
    input:
        run=rules.aggregate.output.metrics,
        baseline=get_compare_baseline,
    output:
        table=report(
            f"{RUN}/compare/compare.md",
            caption="../report/compare.rst",
            category="Timing",
        ),
    log:
        f"{RUN}/logs/compare.log",
    conda:
        ENV
    params:
        tolerance=config["compare"]["tolerance"],
    script:
        "../scripts/compare.py"

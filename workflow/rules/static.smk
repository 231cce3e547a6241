rule static_flops:
    input:
        subset=rules.select_subset.output.subset,
    output:
        json=f"{RUN}/static/static_compute.json",
        md=report(
            f"{RUN}/static/static_compute.md",
            caption="../report/static_compute.rst",
            category="Compute",
        ),
    log:
        f"{RUN}/logs/static_flops.log",
    benchmark:
        f"{RUN}/benchmarks/static_flops.tsv"
    conda:
        ENV
    # Counting the full model keeps every core busy for a minute; taking all of them
    # keeps it from running beside a timing job and slowing its host-bound decode.
    threads: all_cores()
    params:
        spec=job_model_spec,
        max_new_tokens=config["max_new_tokens"],
    script:
        "../scripts/static_flops.py"


# A sweep point that changes the workload (preset, mode, max_crops) has its own FLOPs;
# optimisation variants share the baseline's, since FLOPs do not change with the code path.
use rule static_flops as static_flops_variant with:
    output:
        json=f"{RUN}/variants/{{variant}}/static/static_compute.json",
        md=f"{RUN}/variants/{{variant}}/static/static_compute.md",
    log:
        f"{RUN}/logs/static_flops-{{variant}}.log",
    benchmark:
        f"{RUN}/benchmarks/static_flops-{{variant}}.tsv"


# Each compared model (`models:`) counts its own.
use rule static_flops as static_flops_model with:
    output:
        json=f"{RUN}/models/{{model}}/static/static_compute.json",
        md=f"{RUN}/models/{{model}}/static/static_compute.md",
    log:
        f"{RUN}/logs/static_flops-model-{{model}}.log",
    benchmark:
        f"{RUN}/benchmarks/static_flops-model-{{model}}.tsv"


rule calibrate_peaks:
    output:
        calibration=f"{RUN}/static/calibration.json",
    log:
        f"{RUN}/logs/calibrate_peaks.log",
    benchmark:
        f"{RUN}/benchmarks/calibrate_peaks.tsv"
    conda:
        ENV
    resources:
        gpu=1,
    params:
        device=DEVICE,
        dtype=config["dtype"],
        enabled=config["metrics"]["calibrate"],
    script:
        "../scripts/calibrate_peaks.py"

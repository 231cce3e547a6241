# The FLOP count of an arm that counts its own: the baseline, a sweep point (preset, mode,
# max_crops change the workload) and each compared model; optimisation variants share the
# baseline's, since FLOPs do not change with the code path.
rule static_flops:
    input:
        subset=rules.select_subset.output.subset,
    output:
        json=f"{RUN}/{{arm}}static/static_compute.json",
        md=report(
            f"{RUN}/{{arm}}static/static_compute.md",
            caption="../report/static_compute.rst",
            category="Compute",
            subcategory=arm_label,
        ),
    log:
        f"{RUN}/logs/{{arm}}static_flops.log",
    benchmark:
        f"{RUN}/benchmarks/{{arm}}static_flops.tsv"
    wildcard_constraints:
        arm=PLAN.folders(lambda arm: arm.flops_of == arm.name),
    conda:
        ENV
    # Counting the full model keeps every core busy for a minute; taking all of them
    # keeps it from running beside a timing job and slowing its host-bound decode.
    threads: all_cores()
    params:
        spec=run_params("spec"),
        max_new_tokens=config["max_new_tokens"],
    script:
        "../scripts/static_flops.py"


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
        device=PLAN.device,
        dtype=config["dtype"],
        enabled=config["metrics"]["calibrate"],
    script:
        "../scripts/calibrate_peaks.py"

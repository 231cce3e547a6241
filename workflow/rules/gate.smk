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


# The correctness gate of a variant (the control's included; a sweep point is compared
# without one) or of a compared model's best path (against its released path).
rule variant_gate:
    input:
        unpack(get_gate_outputs),
        # A list, as every input of the gate is (the script reads each as one).
        subset=[rules.select_subset.output.subset],
    output:
        gate=f"{RUN}/{{arm}}gate.json",
    log:
        f"{RUN}/logs/{{arm}}variant_gate.log",
    wildcard_constraints:
        arm=PLAN.folders(lambda arm: arm.gated or arm.sweep_point),
    conda:
        ENV
    params:
        name=lambda wildcards: job_arm(wildcards).name,
        reference=lambda wildcards: job_arm(wildcards).reference or BASELINE.name,
        code_path_factor=config["variant_gate"]["code_path_factor"],
        precision_factor=config["variant_gate"]["precision_factor"],
        pages=config["variant_gate"]["pages"],
        sweep_point=lambda wildcards: job_arm(wildcards).sweep_point,
        switches=lambda wildcards: as_json(job_arm(wildcards).switches),
    script:
        "../scripts/variant_gate.py"

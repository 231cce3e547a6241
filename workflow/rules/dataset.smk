rule synthetic_dataset:
    output:
        manifest=f"{config['dataset']['path']}/manifest.csv",
    log:
        f"{RUN}/logs/synthetic_dataset.log",
    conda:
        ENV
    params:
        n_pages=config["dataset"]["synthetic_pages"],
        seed=config["subset"]["seed"],
    script:
        "../scripts/synthetic_dataset.py"


rule select_subset:
    input:
        dataset=dataset_input(),
    output:
        subset=report(
            f"{RUN}/inputs/subset.csv",
            caption="../report/subset.rst",
            category="Inputs",
        ),
    log:
        f"{RUN}/logs/select_subset.log",
    conda:
        ENV
    params:
        source=config["dataset"]["source"],
        image_root=config["dataset"]["image_root"],
        n=config["subset"]["n"],
        seed=config["subset"]["seed"],
        list_file=config["subset"]["list_file"],
    script:
        "../scripts/select_subset.py"

localrules:
    rulegraph,


# `snakemake rulegraph` redraws the README's rule graph; editing a step file or the default
# config makes it out of date, so it reruns.
rule rulegraph:
    input:
        snakefile="Snakefile",
        config="config/config.yaml",
        steps=expand(
            "workflow/rules/{step}.smk",
            step=glob_wildcards("workflow/rules/{step}.smk").step,
        ),
    output:
        dot="docs/rulegraph.dot",
        svg="docs/rulegraph.svg",
    log:
        f"{RUN}/logs/rulegraph.log",
    conda:
        ENV
    script:
        "../scripts/rulegraph.py"

localrules:
    rulegraph,
    importgraph,


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


# `snakemake importgraph` redraws the library's layers and the imports between them, from
# the import-linter contract in pyproject.toml; editing the library makes it out of date.
rule importgraph:
    input:
        pyproject="pyproject.toml",
        library=expand(
            "src/vlmprof/{module}.py",
            module=glob_wildcards("src/vlmprof/{module}.py").module,
        ),
    output:
        dot="docs/importgraph.dot",
        svg="docs/importgraph.svg",
    log:
        f"{RUN}/logs/importgraph.log",
    conda:
        ENV
    script:
        "../scripts/importgraph.py"

rule render_notebook:
    input:
        unpack(get_model_comparison),
        notebook="notebooks/{notebook}.py",
        metrics=f"{RUN}/metrics.json",
        variants=rules.compare_variants.output.json,
    output:
        ipynb=f"{RUN}/{{notebook}}.ipynb",
    log:
        f"{RUN}/logs/render_{{notebook}}.log",
    benchmark:
        f"{RUN}/benchmarks/render_{{notebook}}.tsv"
    conda:
        ENV
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.metrics),
    shell:
        """
        export MPLCONFIGDIR="$(mktemp -d)"
        tmp="$(mktemp -d)"
        jupytext --to ipynb --set-kernel python3 --output "$tmp/source.ipynb" {input.notebook} >{log} 2>&1
        python -m vlmprof.report.notebook_execute "$tmp/source.ipynb" "$tmp/executed.ipynb" \
            --run-dir {params.run_dir} >>{log} 2>&1
        mv "$tmp/executed.ipynb" {output.ipynb}
        """


rule export_notebook:
    input:
        ipynb=rules.render_notebook.output.ipynb,
        template="notebooks/templates/page.html.j2",
    output:
        html=report(
            f"{RUN}/{{notebook}}.html",
            caption="../report/notebook.rst",
            category="Summary",
            labels={"notebook": "{notebook}"},
        ),
        md=f"{RUN}/{{notebook}}.md",
    log:
        f"{RUN}/logs/export_{{notebook}}.log",
    conda:
        ENV
    params:
        no_input=lambda wildcards: (
            "--no-input" if wildcards.notebook == "stakeholder_summary" else ""
        ),
        run_dir=lambda wildcards, output: os.path.dirname(output.html),
    shell:
        """
        tmp="$(mktemp -d)"
        name={wildcards.notebook}
        jupyter nbconvert --to html --template-file {input.template} {params.no_input} --output-dir "$tmp" --output "$name" {input.ipynb} >{log} 2>&1
        jupyter nbconvert --to markdown --no-input --output-dir "$tmp" --output "$name" {input.ipynb} >>{log} 2>&1
        if [ -d "$tmp/${{name}}_files" ]; then
            rm -rf "{params.run_dir}/${{name}}_files"
            mv "$tmp/${{name}}_files" "{params.run_dir}/"
        fi
        mv "$tmp/$name.html" {output.html}
        mv "$tmp/$name.md" {output.md}
        """


rule publish:
    input:
        pages=expand(f"{RUN}/{{notebook}}.html", notebook=NOTEBOOKS),
        markdown=expand(f"{RUN}/{{notebook}}.md", notebook=NOTEBOOKS),
        metrics=f"{RUN}/metrics.json",
    output:
        index=f"{RUN}/publish/index.html",
    log:
        f"{RUN}/logs/publish.log",
    conda:
        ENV
    params:
        run_name=config["run_name"],
    script:
        "../scripts/publish.py"


rule report_figures:
    input:
        ipynb=f"{RUN}/report.ipynb",
    output:
        figures=report(
            directory(f"{RUN}/figures"),
            patterns=["{figure}.png"],
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{RUN}/logs/report_figures.log",
    conda:
        ENV
    script:
        "../scripts/report_figures.py"

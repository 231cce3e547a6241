# vlmprof: stage-by-stage profiling of DeepSeek-OCR inference.
# Run: snakemake --cores 1 --resources gpu=1   (see README.md)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/static.smk"
include: "workflow/rules/profile.smk"
include: "workflow/rules/gate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/docs.smk"


rule all:
    default_target: True
    input:
        get_final_output(),

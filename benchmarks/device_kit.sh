#!/usr/bin/env bash
# The wheels the GPU machine lacks, fetched here for it (that machine reaches no package
# index). Run from the repository root on a machine with pip and a package index:
#     benchmarks/device_kit.sh
# It fills .whl/ (which git must ignore: add `/.whl/` to .git/info/exclude) with the
# Python 3.12 manylinux x86-64 wheels of everything the pipeline runs that the machine's
# image does not hold (benchmarks/device_image.txt lists the image): Snakemake and its
# tree, papermill, jupytext, nbconvert, ipykernel, fvcore, nvtx, HolisticTraceAnalysis
# with plotly, jsonschema, and transformers at our pin (the image has an older one).
# Wheels are pinned below; sdist-only projects are built here (pure Python); PuLP's
# solver binaries for other platforms and plotly's browser bundles are cut out to stay
# under the size the tree may travel with. A few declared requirements are left out on
# purpose (benchmarks/device_kit.py OMITTED says why). It then checks that every carried
# wheel's requirements are met by a carried wheel or the image, prints each wheel's size,
# and stamps the source (`python -m vlmprof.provenance stamp`, src/vlmprof/_source.json)
# since the copy sent there has no .git. Send `.whl` and `src/vlmprof/_source.json` with
# the tree, and start the command there with `source benchmarks/device_env.sh`.
set -euo pipefail
dest=.whl
limit_mib=${KIT_LIMIT_MIB:-40}
here=$(dirname "$0")
if ! git check-ignore -q "$dest/probe.whl"; then
    echo "$dest/ is not ignored by git; add it first:" \
        "echo /$dest/ >> \"\$(git rev-parse --git-common-dir)/info/exclude\"" >&2
    exit 1
fi
platforms=()
for tag in manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 \
    manylinux_2_26 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
binary=(
    ConfigArgParse==1.9.0 GitPython==3.2.1 PuLP==3.3.2 SQLAlchemy==2.0.58
    annotated-types==0.8.0 argparse-dataclass==2.0.0 asttokens==3.0.2
    beautifulsoup4==4.15.0 bleach==6.4.0 comm==0.2.3 conda-inject==1.3.2 defusedxml==0.7.1
    docutils==0.22.4 dpath==2.2.0 entrypoints==0.4.2 executing==2.3.0
    fastjsonschema==2.22.3 gitdb==4.0.12 greenlet==3.5.6 holistictraceanalysis==0.5.0
    httpcore2==2.16.2 httpx2==2.16.2 humanfriendly==10.0 immutables==0.21 ipykernel==7.4.0
    ipython==9.18.1 ipython_pygments_lexers==1.1.1 jsonschema-specifications==2025.9.1
    jsonschema==4.26.0 jupyter_client==8.10.0 jupyter_core==5.9.1
    jupyterlab_pygments==0.3.0 jupytext==1.19.6 matplotlib-inline==0.2.2
    mdit-py-plugins==0.7.0 mistune==3.4.0 nbclient==0.11.0 nbconvert==7.17.2
    nbformat==5.11.1 nest-asyncio2==1.7.4 nvtx==0.2.17 pandocfilters==1.5.1
    papermill==2.7.0 pexpect==4.9.0 platformdirs==4.14.9 plotly==7.1.0
    prompt_toolkit==3.0.53 ptyprocess==0.7.0 pure_eval==0.2.4 pydantic==2.14.4
    pydantic_core==2.50.5 pyzmq==27.3.0 referencing==0.37.0 rpds-py==2026.9.1
    smart_open==7.7.1 smmap==5.0.3 snakemake-interface-common==1.23.0
    snakemake-interface-executor-plugins==9.4.0 snakemake-interface-logger-plugins==2.1.0
    snakemake-interface-report-plugins==1.3.0 snakemake-interface-scheduler-plugins==2.0.2
    snakemake-interface-storage-plugins==4.4.1 snakemake==9.27.1 soupsieve==4.1.3
    sqlmodel==0.0.37 stack-data==0.6.3 tenacity==9.2.1 termcolor==3.3.0 throttler==1.2.3
    tinycss2==1.5.1 tornado==6.6.1 traitlets==5.16.1 transformers==5.23.0
    truststore==0.10.5 typing-inspection==0.4.5 wcwidth==0.9.4 webencodings==0.6.1
    yacs==0.1.8 yte==1.9.4
)
# Published as sources only; pure Python, so a wheel built here runs there.
source_only=(connection_pool==0.0.3 fvcore==0.1.5.post20221221 iopath==0.1.10)

mkdir -p "$dest"
rm -f "$dest"/*.whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d "$dest" "${binary[@]}"
python3 -m pip wheel -q --no-deps -w "$dest" "${source_only[@]}"
python3 "$here/device_kit.py" slim "$dest"/pulp-*.whl pulp/solverdir/cbc/ pulp/tests/ \
    --keep pulp/solverdir/cbc/linux/i64/
python3 "$here/device_kit.py" slim "$dest"/plotly-*.whl plotly/labextension/ \
    plotly/package_data/widgetbundle.js plotly-7.1.0.data/data/share/jupyter/
python3 "$here/device_kit.py" check "$dest"
ls -S -l "$dest" | awk 'NR > 1 {printf "%10d  %s\n", $5, $9}'
total=$(du -cb "$dest"/*.whl | tail -n 1 | cut -f 1)
echo "$(ls "$dest"/*.whl | wc -l) wheels, $(( total / 1048576 )) MiB in $dest/"
if (( total > limit_mib * 1048576 )); then
    echo "the wheels exceed $limit_mib MiB; the tree sent to the GPU machine is capped" >&2
    exit 1
fi
PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} python3 -m vlmprof.provenance stamp

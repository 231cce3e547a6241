"""The workflow's conventions: its report, lint and formatting, every example config, the
committed rule graph and the conda environment."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch
import yaml
from PIL import Image

from tests.needs_tool import needs_tool
from tests.workflow_helpers import (
    BIN,
    FAST_CONFIG,
    REPO,
    copy_workflow,
    jobs_in_dry_run,
    snakemake,
    snakemake_env,
    write_config,
)

EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))
RULEGRAPH = REPO / "docs" / "rulegraph"
SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))
# Snakemake's command line run in-process, writing the modules it loaded to argv[1] on exit.
PLANNER = """
import atexit, sys
from snakemake.cli import main
loaded = sys.argv.pop(1)
atexit.register(lambda: open(loaded, "w").write("\\n".join(sorted(sys.modules))))
sys.exit(main())
"""
# What a wildcard of an output template matches where not one path part.
WILDCARDS = {"arm": "(?:[^/]+/[^/]+/)?"}
NODE = re.compile(r'^\s*(\w+)\[label = "(\w+)"', re.MULTILINE)
EDGE = re.compile(r"^\s*(\w+) -> (\w+)\s*;?\s*$", re.MULTILINE)


def tagged_outputs() -> list[dict[str, str]]:
    """Every `report(...)` output in workflow/rules: its path template, caption and category."""
    tagged = []
    for rules in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = rules.read_text()
        for start in (m.end() for m in re.finditer(r"\breport\(", text)):
            depth, end = 1, start
            while depth:
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            call = text[start : end - 1]
            path = re.search(r'f?"([^"]+)"', call)[1]
            # A tagged directory lists the files its `patterns` name.
            patterns = re.search(r'patterns=\["([^"]+)"\]', call)
            if patterns:
                path += "/" + patterns[1].replace("{", "{{").replace("}", "}}")
            tagged.append(
                {
                    "path": path,
                    "caption": re.search(r'caption="([^"]+)"', call)[1],
                    "category": re.search(r'category="([^"]+)"', call)[1],
                }
            )
    return tagged


def path_pattern(template: str, run_name: str) -> re.Pattern[str]:
    """The files a rule's output template names, with each wildcard matching a path part
    (`arm`: an arm's folder, empty for the baseline's)."""
    path = template.replace("{RUN}", f"results/{run_name}")
    parts = re.split(r"\{\{(\w+)\}\}", path)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{WILDCARDS.get(part, '[^/]+')})"
        for i, part in enumerate(parts)
    )
    return re.compile(regex + "$")


def caption_phrases(caption_file: str) -> list[str]:
    """The plain phrases of a caption file: its text between Jinja and literal markup."""
    source = (REPO / "workflow" / "rules" / caption_file).resolve().read_text()
    pieces = re.split(r"\{\{.*?\}\}|\{%.*?%\}|``.*?``", source)
    return [" ".join(p.split()) for p in pieces if len(p.strip()) >= 30]


def embedded_json(page: str, script_id: str):
    """The JSON value (object or string) that one data script of the report's page holds."""
    name = script_id.replace("-", "_")
    start = re.search(rf'<script id="{script_id}">\s*var {name} = ', page).end()
    return json.JSONDecoder().raw_decode(page, start)[0]


def dot_structure(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The rules of a DOT rule graph and its edges between rules (node ids resolved)."""
    labels = dict(NODE.findall(text))
    return set(labels.values()), {(labels[a], labels[b]) for a, b in EDGE.findall(text)}


def svg_structure(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The node and edge titles of a Graphviz SVG, which name the DOT's node ids."""
    titles: dict[str, list[str]] = {"node": [], "edge": []}
    for group in ElementTree.fromstring(text).iter("{http://www.w3.org/2000/svg}g"):
        kind = group.get("class")
        if kind in titles:
            titles[kind].append(group.find("{http://www.w3.org/2000/svg}title").text)
    edges = {tuple(title.split("->")) for title in titles["edge"]}
    return set(titles["node"]), edges


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch checkout of the workflow that no test runs jobs in."""
    return copy_workflow(tmp_path_factory.mktemp("conventions"))


@pytest.mark.slow
def test_report_zip_lists_every_tagged_output_with_its_caption(
    pipeline_run: Path, workflow_dir: Path, tmp_path: Path
):
    config = write_config(workflow_dir, FAST_CONFIG)
    archive = tmp_path / "workflow-report.zip"
    result = snakemake(workflow_dir, "--report", str(archive), "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-5000:]
    with zipfile.ZipFile(archive) as bundle:
        page = bundle.read("workflow-report/report.html").decode()
        bundled = set(bundle.namelist())

    results = embedded_json(page, "results")
    categories = embedded_json(page, "categories")
    expected = {}
    for output in tagged_outputs():
        pattern = path_pattern(output["path"], FAST_CONFIG["run_name"])
        for produced in pipeline_run.rglob("*"):
            relative = produced.relative_to(workflow_dir).as_posix()
            if produced.is_file() and pattern.match(relative):
                expected[relative] = output
    assert {"stage_ms.csv", "mfu.csv", "report.html", "stakeholder_summary.html"} <= {
        Path(path).name for path in expected
    }
    assert set(results) == set(expected)
    for path, output in expected.items():
        entry = results[path]
        text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", entry["caption"])).split())
        assert any(phrase in text for phrase in caption_phrases(output["caption"])), (path, text)
        assert path in sum(categories[output["category"]].values(), []), path
        assert f"workflow-report/{entry['data_uri']}" in bundled, path
    assert "<title>rulegraph</title>" in embedded_json(page, "workflow-desc")
    # Offline: no script or stylesheet comes from the network.
    assert not re.findall(r'<(?:script|link)[^>]+(?:src|href)="https?://', page)


def test_lint_finds_nothing(checkout: Path):
    result = snakemake(checkout, "--lint")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Lints for" not in output, output


def test_planning_the_jobs_imports_neither_torch_nor_transformers(checkout: Path, tmp_path: Path):
    loaded = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", PLANNER, str(loaded), "-n", "--cores", "1"],
        cwd=checkout,
        capture_output=True,
        text=True,
        env=snakemake_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    modules = set(loaded.read_text().split())
    assert "snakemake" in modules and "vlmprof.models" in modules  # the planner did run
    heavy = sorted(m for m in modules if m.split(".")[0] in {"torch", "transformers"})
    assert not heavy, f"planning imported {heavy[:5]}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_a_script_only_logs_reads_its_job_and_calls_the_library(script: Path):
    lines = script.read_text().splitlines()
    assert len(lines) <= 12, f"{script.name}: {len(lines)} lines; move the logic to vlmprof.jobs"
    assert "log_to_file(smk.log[0])" in lines, script.name
    calls = [line for line in lines if line.startswith("from vlmprof.jobs.")]
    assert len(calls) == 1, f"{script.name}: call one function of vlmprof.jobs"


def test_common_smk_holds_input_functions_not_planning():
    """The arms are worked out by the run plan (vlmprof.plan); common.smk validates, makes
    the plan and reads its arms: no branch on which wildcard a rule has."""
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) <= 200, f"common.smk: {len(lines)} lines; move planning to vlmprof.plan"
    assert "getattr(wildcards" not in text and "hasattr(wildcards" not in text


def test_nothing_in_the_library_imports_the_jobs_above_it():
    package = REPO / "src" / "vlmprof"
    for module in package.rglob("*.py"):
        if module.parent.name != "jobs":
            assert "vlmprof.jobs" not in module.read_text(), module.relative_to(package)


def test_snakefmt_would_change_nothing():
    result = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=snakemake_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_config_says_what_it_is_for_and_dry_runs(checkout: Path, example: Path):
    text = example.read_text()
    header = text.split("\n\n", 1)[0].split("run_name:", 1)[0]
    assert text.startswith("# "), f"{example.name}: start with a comment saying what it is for"
    assert f"--configfile config/examples/{example.name}" in header, example.name
    config = yaml.safe_load(text)
    dataset = config.get("dataset", {})
    if dataset.get("source") == "folder":
        # The user brings this folder of pages; a dry run needs it to hold one.
        (checkout / dataset["path"]).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), "white").save(checkout / dataset["path"] / "page.png")
    needs_cuda = any(
        switches.get("decode") == "cuda_graph" for switches in config.get("variants", {}).values()
    )
    if needs_cuda and not torch.cuda.is_available():
        # CUDA-graph variants are refused before any job on a machine without a GPU, in one
        # line naming the file and the first such key.
        result = snakemake(checkout, "-n", "--configfile", str(example))
        assert result.returncode != 0
        refused = [line for line in result.stderr.splitlines() if "needs a CUDA device" in line]
        assert len(refused) == 1, result.stderr
        key = r"variants\.[\w-]+\.decode"
        file = re.escape(str(example))
        assert re.match(rf"{file}: {key}: cuda_graph needs", refused[0]), refused[0]
        return
    jobs = jobs_in_dry_run(checkout, "--configfile", str(example))
    assert {"select_subset", "profile_shard", "aggregate", "publish", "all"} <= jobs
    if config.get("models"):
        # Every model's best path (a static KV cache on a CPU) is gated against its own
        # released path: an oracle per model.
        assert {"gate_oracle", "variant_gate", "compare_models"} <= jobs


def test_committed_rule_graph_is_current(checkout: Path):
    result = snakemake(checkout, "--rulegraph")
    assert result.returncode == 0, result.stderr
    committed = RULEGRAPH.with_suffix(".dot").read_text()
    assert dot_structure(committed) == dot_structure(result.stdout), (
        "docs/rulegraph.dot is out of date: run `snakemake rulegraph`"
    )
    rules, edges = dot_structure(committed)
    assert "all" in rules and ("publish", "all") in edges
    assert svg_structure(RULEGRAPH.with_suffix(".svg").read_text()) == (rules, edges), (
        "docs/rulegraph.svg was not drawn from docs/rulegraph.dot: run `snakemake rulegraph`"
    )


@needs_tool(None if shutil.which("dot") else "dot missing: apt-get install graphviz")
def test_rulegraph_target_redraws_the_committed_files(tmp_path: Path):
    scratch = copy_workflow(tmp_path)
    result = snakemake(scratch, "--", "rulegraph")
    assert result.returncode == 0, result.stderr[-3000:]
    drawn = scratch / "docs" / "rulegraph"
    assert drawn.with_suffix(".dot").read_text() == RULEGRAPH.with_suffix(".dot").read_text()
    assert svg_structure(drawn.with_suffix(".svg").read_text()) == svg_structure(
        RULEGRAPH.with_suffix(".svg").read_text()
    )


def test_environment_installs_the_pinned_set_of_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    # The workflow's own dependencies, the SLURM executor plugin, and the package itself.
    expected = [*project["dependencies"], *project["optional-dependencies"]["slurm"], "-e ."]
    assert sorted(pip) == sorted(expected)
    assert f"python={project['requires-python'].removeprefix('>=')}" in conda

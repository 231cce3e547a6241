"""The throughput example through the real workflow on the CPU: the arms a CPU can run, at
small batch sizes, each gated against the baseline at batch 1, with each setting's KV cache,
binding side and timelines; then a batch out of memory, read as "did not fit", not as a
failure of the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.workflow_helpers import REPO, copy_workflow, snakemake, write_config
from vlmprof.records import OUT_OF_MEMORY, RunRecord

EXAMPLE = REPO / "config" / "examples" / "throughput.yaml"
PAGES = 4
# What an out-of-memory batch's records say (the timing pass's reason of the error).
OUT_OF_MEMORY_ERROR = f"{OUT_OF_MEMORY}: CUDA out of memory. Tried to allocate 9.00 GiB"


def cpu_form(example: dict) -> dict:
    """The example as a CPU runs it: the small preset in float32 on 4 pages x 4 tokens, at
    most 2 crops a page (the CPU's time goes to the vision of the crops); the CUDA-only
    switches dropped (a static cache for the graphed decode, eager vision), the
    arm making pages on the GPU left out, batches capped at the pages, an arm of a few pages
    on half of them, workers at the machine's 2 cores. Of the arms then alike but for their
    pages, the one of most pages runs; arms of smaller batches are left out (the released
    path at batch 1 is the baseline)."""
    variants: dict[str, dict] = {}
    for name, switches in example["variants"].items():
        if switches.get("preprocess") == "gpu":
            continue
        cpu = {key: value for key, value in switches.items() if key != "vision"}
        if cpu.get("decode") == "cuda_graph":
            cpu["decode"] = "static"
        cpu["batch_size"] = min(cpu.get("batch_size", 1), PAGES)
        if "pages" in cpu:
            # Every page, or half of them for an arm of a few pages.
            few = cpu["pages"] < example["subset"]["n"]
            cpu["pages"] = PAGES // 2 if few else PAGES
        if "workers" in cpu:
            cpu["workers"] = min(cpu["workers"], 2)
        if cpu["batch_size"] < PAGES:
            continue
        same = _but_pages(cpu)
        alike = next((other for other, kept in variants.items() if _but_pages(kept) == same), None)
        if alike is not None:
            if variants[alike].get("pages", 0) >= cpu.get("pages", 0):
                continue
            del variants[alike]
        variants[name] = cpu
    return {
        **example,
        "device": "cpu",
        "dtype": "float32",
        "model": {**example["model"], "preset": "small"},
        "dataset": {**example["dataset"], "synthetic_pages": PAGES},
        "subset": {"n": PAGES},
        "max_new_tokens": 4,
        "max_crops": 2,
        "variants": variants,
    }


def _but_pages(switches: dict) -> dict:
    """An arm's switches but its pages."""
    return {key: value for key, value in switches.items() if key != "pages"}


@pytest.fixture(scope="module")
def config() -> dict:
    """The example's CPU form."""
    return cpu_form(yaml.safe_load(EXAMPLE.read_text()))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the workflow."""
    return copy_workflow(tmp_path_factory.mktemp("throughput"))


@pytest.fixture(scope="module")
def throughput_run(checkout: Path, config: dict) -> Path:
    """The example's CPU form run up to its comparison (the notebooks come after the batch
    out of memory below); its results folder."""
    run = Path("results") / config["run_name"]
    config_file = str(write_config(checkout, config))
    target = str(run / "variants" / "comparison.json")
    result = snakemake(checkout, "--configfile", config_file, "--", target)
    assert result.returncode == 0, result.stderr[-5000:]
    return checkout / run


def test_the_cpu_form_runs_the_released_path_a_batch_an_inline_and_a_workers_arm(config: dict):
    arms = {
        name: (s["batch_size"], s.get("workers", 0), s.get("pages"), s.get("decode", "eager"))
        for name, s in config["variants"].items()
    }
    assert arms == {
        "released-b8": (PAGES, 0, 2, "eager"),
        "b64": (PAGES, 0, PAGES, "static"),
        "b64-w8": (PAGES, 2, PAGES, "static"),
    }
    assert config["pages"] == config["variant_gate"]["pages"] == 2


def test_every_arm_passes_the_gate_and_reports_its_memory_and_binding_side(
    throughput_run: Path, config: dict
):
    comparison = json.loads((throughput_run / "variants" / "comparison.json").read_text())
    statuses = {v["name"]: v["status"] for v in comparison["variants"]}
    assert set(statuses) == {"baseline", *config["variants"]}
    assert all(status == "passed" for name, status in statuses.items() if name != "baseline")
    settings = {s["name"]: s for s in comparison["settings"]}
    assert {name: s["batch_size"] for name, s in settings.items()} == {
        "baseline": 1,
        "released-b8": PAGES,
        "b64": PAGES,
        "b64-w8": PAGES,
    }
    # The baseline (the released path) ran the first 2 pages, as did released-b8; the gate
    # judged those 2, b64 ran every page.
    for arm, pages in {"": 2, "variants/released-b8/": 2, "variants/b64/": PAGES}.items():
        document = json.loads((throughput_run / arm / "metrics.json").read_text())
        assert document["counts"]["images"] == pages, arm
    gate = json.loads((throughput_run / "variants" / "b64" / "gate.json").read_text())
    assert (gate["pages"], gate["pages_in_run"]) == (2, 2)
    assert "first 2 of 2 pages (the gate's sample)" in gate["criterion"]
    assert settings["b64-w8"]["workers"] == 2 and settings["b64"]["workers"] == 0
    for setting in settings.values():
        assert setting["binding"] in ("host", "GPU") and setting["pages_did_not_fit"] == 0
        assert 0 < setting["end_to_end_share"] <= 1
    # The KV cache of a batch of 4 is that of its 4 pages at the batch's longest prompt.
    metrics = json.loads((throughput_run / "variants" / "b64" / "metrics.json").read_text())
    memory = metrics["memory"]
    (batch,) = memory["batches"]
    prompts = [page["prefill_len"] for page in metrics["inputs"]]
    assert len(set(prompts)) > 1  # pages with and without crops: the batch is padded
    longest = max(prompts)
    assert batch["pages"] == PAGES and batch["positions"] == longest + config["max_new_tokens"]
    assert settings["b64"]["kv_cache_bytes"] == (
        memory["kv_bytes_per_token_per_layer"] * memory["layers"] * batch["positions"] * PAGES
    )
    assert settings["baseline"]["kv_cache_bytes"] < settings["b64"]["kv_cache_bytes"]


def _out_of_memory(record: dict) -> dict:
    """A record as the timing pass writes it for a batch that ran out of memory: its page's
    facts, no timings, the error."""
    kept = ("run_id", "image_id", "repeat", "shard", "batch_size", "batch", "mode", "n_crops")
    kept += ("image_tokens", "prefill_len", "device", "dtype", "placement")
    fields = {key: record[key] for key in kept}
    return RunRecord(**fields, status="error", error=OUT_OF_MEMORY_ERROR).to_dict()


def test_a_batch_out_of_memory_did_not_fit_and_the_run_goes_on(
    throughput_run: Path, checkout: Path, config: dict
):
    runs = throughput_run / "variants" / "b64" / "runs"
    records = [json.loads(line) for line in (runs / "shard-0.jsonl").read_text().splitlines()]
    (runs / "shard-0.jsonl").write_text(
        "".join(json.dumps(_out_of_memory(r), sort_keys=True) + "\n" for r in records)
    )
    torch.save({}, runs / "shard-0.outputs.pt")
    result = snakemake(checkout, "--configfile", str(write_config(checkout, config)))
    assert result.returncode == 0, result.stderr[-5000:]
    gate = json.loads((throughput_run / "variants" / "b64" / "gate.json").read_text())
    assert gate["status"] == "did_not_fit", gate
    # Of the gate's sample of 2 pages; all 4 of the arm's pages ran out of memory.
    assert gate["detail"] == "2 of 2 pages did not fit (out of memory)"
    comparison = json.loads((throughput_run / "variants" / "comparison.json").read_text())
    entry = next(v for v in comparison["variants"] if v["name"] == "b64")
    setting = next(s for s in comparison["settings"] if s["name"] == "b64")
    assert entry["status"] == setting["status"] == "did_not_fit"
    assert setting["pages_did_not_fit"] == PAGES and setting["kv_cache_bytes_did_not_fit"] > 0
    assert all(
        r["verdict"] == "did not fit: out of memory"
        for r in comparison["rows"]
        if r["variant"] == "b64"
    )
    # The others are judged as before; no page counts as a failure of the run.
    assert {v["name"]: v["status"] for v in comparison["variants"]}["b64-w8"] == "passed"
    assert "did not fit" in (throughput_run / "variants" / "comparison.md").read_text()
    report = (throughput_run / "report.md").read_text()
    assert "-bound**" in report and "A steady batch of each setting" in report
    assert "`b64` (batch 4, 0 workers) did not fit in the device's memory" in report
    assert "failed the correctness check" not in report

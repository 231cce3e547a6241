"""The gate-resolution benchmark's measurement on one page: the unperturbed model built again
passes, a head perturbed by half its weight spread is caught."""

import sys
from pathlib import Path

from vlmprof.models import ModelSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from gate_resolution import gate_resolution, markdown_table, synthetic_pages  # noqa: E402

TOLERANCE = 0.02


def test_gate_passes_the_same_model_and_catches_a_big_perturbation():
    pages = synthetic_pages(1)
    spec = ModelSpec(preset="small", mode="base")
    control, big = gate_resolution([0.0, 0.5], pages, 6, TOLERANCE, spec)
    (page,) = pages

    assert (control["perturb"], control["pages"], control["caught"]) == (0.0, 1, 0)
    assert control["status"] == "passed"
    assert control["relative_logit_diff"][page] == 0.0
    assert control["diverged_at"][page] is None

    assert (big["perturb"], big["pages"], big["caught"]) == (0.5, 1, 1)
    assert big["status"] == "failed"
    assert big["relative_logit_diff"][page] > TOLERANCE

    table = markdown_table([control, big], TOLERANCE, "One page")
    assert "\n\nOne page.\n\n" in table
    assert "| 0.0% | 0 / 1 | 0 to 0 | - |" in table
    assert "| 50.0% | 1 / 1 |" in table
    assert table.rstrip().endswith("the gate catches a perturbation of 50.0% on every page.")

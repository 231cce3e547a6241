"""The gate-resolution benchmark's measurement on one page: the model built again passes, a
head perturbed by half its weight spread and a decode layer's attention 50% off are caught."""

import sys
from pathlib import Path

from vlmprof.models import ModelSpec
from vlmprof.variants.gate import GateFactors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from gate_resolution import KINDS, gate_resolution, markdown_table, synthetic_pages  # noqa: E402

FACTORS = GateFactors(code_path=10.0, precision=1.5)


def test_gate_passes_the_same_model_and_catches_big_perturbations():
    pages = synthetic_pages(1)
    spec = ModelSpec(preset="small", mode="base")
    rows = gate_resolution(["float32"], KINDS, [0.0, 0.5], pages, 6, spec, FACTORS)
    (page,) = pages
    by = {(row["kind"], row["size"]): row for row in rows}
    for kind in KINDS:
        control, big = by[kind, 0.0], by[kind, 0.5]
        assert (control["pages"], control["caught"], control["status"]) == (1, 0, "passed")
        assert control["code_path_ratio"][page] == 1.0
        assert control["first_different_pick"][page] is None
        assert (big["pages"], big["caught"], big["status"]) == (1, 1, "failed")
        assert big["code_path_ratio"][page] > FACTORS.code_path

    table = markdown_table(rows, FACTORS, "One page")
    assert "\n\nOne page.\n\n" in table
    assert "| float32 | head | 0.0000% | 0 / 1 | 1 to 1 | - | - |" in table
    assert "| float32 | decode attention | 50.0000% | 1 / 1 |" in table
    assert "head in float32: caught on every page from 50.0000%" in table
    assert "decode attention in float32: caught on every page from 50.0000%" in table

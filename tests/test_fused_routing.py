"""`routing: fused`: every MoE router of the decoder runs through torch.compile, the page's
outputs pass the correctness gate against the eager routers, and impossible combinations
are refused before any job."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from tests.workflow_helpers import default_config, default_settings
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.variants.gate import GateFactors
from vlmprof.variants.gate_runs import GateRuns
from vlmprof.variants.switches import VariantError, check_variant

PAGE = Image.new("RGB", (1240, 1754), "white")


@pytest.mark.parametrize("model", ["deepseek_ocr", "deepseek_ocr2"])
def test_fused_routers_give_the_eager_routers_outputs(model: str):
    adapter = build_adapter(ModelSpec(name=model, preset="small", routing="fused"))
    routers = [adapter.module.get_submodule(path) for path in adapter.router_paths()]
    # Every MoE layer's router (the dense first layer has none) runs compiled.
    assert len(routers) == adapter.dims.decoder.layers - adapter.dims.decoder.first_k_dense
    assert all(hasattr(router.forward, "_torchdynamo_orig_callable") for router in routers)
    gate = default_config()["variant_gate"]
    runs = GateRuns(
        ModelSpec(name=model, preset="small"),
        {"page": PAGE},
        default_settings(run_id="routing", max_new_tokens=6),
        GateFactors(gate["code_path_factor"], gate["precision_factor"]),
    )
    verdict = runs.judge("fused", {"routing": "fused"})
    assert verdict["status"] == "passed", verdict["detail"]


def test_fused_routing_is_refused_where_the_routers_are_compiled_already_or_absent():
    base = dataclasses.asdict(ModelSpec(preset="small"))
    check_variant("fused", base, {"routing": "fused"})
    with pytest.raises(VariantError, match="^variants.fused.routing: fused compiles"):
        check_variant("fused", base, {"routing": "fused", "compile": "decoder"})
    remote = {**base, "checkpoint": "ckpt", "trust_remote_code": True}
    with pytest.raises(VariantError, match="routing need our module tree"):
        check_variant("fused", remote, {"routing": "fused"})
    with pytest.raises(ValueError, match="routing: hf_vlm runs the model's own forward"):
        build_adapter(ModelSpec(name="hf_vlm", routing="fused"))

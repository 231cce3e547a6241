"""`preprocess: gpu`: the views made by torch on the model's device agree with PIL's within
a tolerance, in the same layout. The transform is device-agnostic, so the CPU runs it here
(the run setting itself is refused on a CPU run); on CUDA the same checks run on the GPU.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.deepseek_ocr.device_preprocess import padded_square, prepare_views_on_device
from vlmprof.models.deepseek_ocr.preprocess import prepare_views
from vlmprof.runtime.page_source import page_inputs

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    ),
]
# Measured on the synthetic A4 and letter pages (normalised units, range 2): PIL's and
# torch's bicubic kernels differ at sharp text edges (largest 0.127, about 16 of 255
# levels), while the mean stays under 0.001; a view shifted by one pixel is far off.
MEAN_TOLERANCE = 0.002
MAX_TOLERANCE = 0.2


def _differences(want: torch.Tensor, got: torch.Tensor) -> tuple[float, float]:
    difference = (want - got.cpu()).abs()
    return float(difference.mean()), float(difference.max())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["gundam", "base", "tiny"])
@pytest.mark.parametrize("size", PAGE_SIZES[:3], ids=lambda s: s.name)
def test_device_views_agree_with_pil_views(device, mode, size):
    page = render_page("text_heavy", size, seed=0, index=1)
    want = prepare_views(page, mode, 6)
    got = prepare_views_on_device(page, mode, 6, torch.device(device))
    assert got.plan == want.plan
    assert got.global_view.shape == want.global_view.shape
    mean, largest = _differences(want.global_view, got.global_view)
    assert mean <= MEAN_TOLERANCE and largest <= MAX_TOLERANCE
    assert (got.crops is None) == (want.crops is None)
    if want.crops is not None:
        assert got.crops.shape == want.crops.shape
        mean, largest = _differences(want.crops, got.crops)
        assert mean <= MEAN_TOLERANCE and largest <= MAX_TOLERANCE


def test_a_page_wider_than_tall_is_centred_like_pil():
    page = render_page("text_heavy", PAGE_SIZES[0], seed=0, index=2).rotate(90, expand=True)
    want = prepare_views(page, "base", 6).global_view
    got = prepare_views_on_device(page, "base", 6, torch.device("cpu")).global_view
    assert _differences(want, got)[0] <= MEAN_TOLERANCE
    # one row lower is clearly wrong: the tolerance can tell placements apart
    assert _differences(want, torch.roll(got, 1, dims=-2))[0] > 4 * MEAN_TOLERANCE


def test_the_padding_is_the_mean_colour():
    pixels = torch.full((1, 3, 10, 20), 255.0)
    square = padded_square(pixels, 20)
    assert square[0, :, 0, 0].tolist() == [127.0, 127.0, 127.0]
    assert square[0, :, 10, 10].tolist() == [255.0, 255.0, 255.0]


def test_the_run_makes_its_pixels_where_its_setting_says():
    adapter = build_adapter(ModelSpec(preset="small"))
    page = Image.new("RGB", (700, 1000), "white")
    host = page_inputs(adapter, page, "cpu")
    device = page_inputs(adapter, page, "gpu")
    assert torch.equal(host.pixel_views["global"], adapter.preprocess(page).pixel_views["global"])
    assert torch.equal(device.input_ids, host.input_ids)
    assert device.pixel_views.keys() == host.pixel_views.keys()
    for name, pixels in host.pixel_views.items():
        assert _differences(pixels, device.pixel_views[name])[0] <= MEAN_TOLERANCE


def test_other_models_refuse_the_device_views():
    page = Image.new("RGB", (700, 1000), "white")
    ocr2 = build_adapter(ModelSpec(name="deepseek_ocr2", preset="small"))
    with pytest.raises(ValueError, match="preprocess: gpu makes deepseek_ocr's views"):
        page_inputs(ocr2, page, "gpu")
    lm = build_adapter(ModelSpec(name="causal_lm"))
    with pytest.raises(ValueError, match="preprocess: gpu is built for deepseek_ocr's views"):
        page_inputs(lm, page, "gpu")

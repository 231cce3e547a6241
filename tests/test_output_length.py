"""Pages of real lengths: the output-length setting from the config, its seeded per-page
draws, and lengths from a page's ground-truth text through the model's tokenizer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.workflow_helpers import default_config
from vlmprof.data.manifest import TEXT_COLUMN, ground_truth_text, load_manifest
from vlmprof.data.subset import page_texts
from vlmprof.data.synthetic_pages import generate_synthetic_pages
from vlmprof.models import ModelSpec, build_adapter
from vlmprof.models.prompt_tokenizer import stand_in_token_count
from vlmprof.runtime.output_length import OutputLength, OutputLengthError
from vlmprof.runtime.profile_settings import ProfileSettings, settings_params

IDS = [f"page_{index:03d}" for index in range(400)]


def _config(**section: object) -> dict:
    config = copy.deepcopy(default_config())
    config["output_length"] |= section
    return config


def test_fixed_lengths_are_max_new_tokens_and_leave_the_params_as_they_were():
    config = _config(mean=100, spread=1.0, seed=3)  # kind fixed: the rest is not read
    settings = ProfileSettings.run_settings(config)
    assert "output_length" not in settings_params(settings)
    lengths = ProfileSettings.from_config(config, 0).output_length.page_lengths(IDS[:3], 32)
    assert dict(lengths.tokens) == dict.fromkeys(IDS[:3], 32)
    assert lengths.source == "fixed: every page max_new_tokens (32)"


def test_lognormal_lengths_reach_the_jobs_params_and_come_back_whole():
    settings = ProfileSettings.run_settings(_config(kind="lognormal", mean=40, spread=0.3))
    params = json.loads(json.dumps(settings_params(settings), sort_keys=True))
    assert params["output_length"] == {"kind": "lognormal", "mean": 40, "spread": 0.3, "seed": 0}
    made = ProfileSettings(**params, shard=0).output_length
    assert made == OutputLength("lognormal", 40.0, 0.3, 0)


def test_lognormal_lengths_are_seeded_per_page_capped_and_have_their_mean():
    length = OutputLength("lognormal", mean=50.0, spread=0.5, seed=7)
    drawn = length.page_lengths(IDS, 10_000).tokens
    # The same page gets the same length in every arm and repeat (a new instance, another
    # order); other pages and another seed get others.
    assert OutputLength("lognormal", 50.0, 0.5, 7).page_lengths(IDS[::-1], 10_000).tokens == drawn
    assert len(set(drawn.values())) > 40
    other = OutputLength("lognormal", 50.0, 0.5, 8).page_lengths(IDS, 10_000).tokens
    assert sum(drawn[i] != other[i] for i in IDS) > 300
    assert sum(drawn.values()) / len(IDS) == pytest.approx(50, rel=0.06)
    capped = length.page_lengths(IDS, 40).tokens
    assert max(capped.values()) == 40 and min(capped.values()) >= 1
    assert all(capped[i] == min(drawn[i], 40) for i in IDS)
    assert OutputLength("lognormal", 0.01, 0.0).draw("page", 40) == 1


def test_an_unknown_kind_is_named():
    with pytest.raises(OutputLengthError, match=r"^output_length.kind: unknown 'long'"):
        OutputLength("long")


def test_omnidocbench_ground_truth_is_its_elements_in_reading_order():
    elements = [
        {"category_type": "text_block", "order": 2, "text": "Second paragraph."},
        {"category_type": "title", "order": 0, "text": "Title"},
        {
            "category_type": "table",
            "order": 1,
            "html": "<table><tr><td>1</td></tr></table>",
            "latex": "\\begin{tabular}1\\end{tabular}",
        },
        {"category_type": "equation_isolated", "order": None, "latex": "$x^2$"},
        {"category_type": "figure", "order": 3},
        {"category_type": "abandon", "order": 4, "text": "watermark", "ignore": True},
    ]
    assert ground_truth_text(elements) == (
        "Title\n\n<table><tr><td>1</td></tr></table>\n\nSecond paragraph.\n\n$x^2$"
    )
    assert ground_truth_text(None) == ""


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return load_manifest(generate_synthetic_pages(tmp_path_factory.mktemp("pages"), n_pages=3))


def test_synthetic_pages_keep_the_text_they_were_drawn_from(synthetic: pd.DataFrame):
    texts = page_texts(synthetic)
    assert set(texts) == set(synthetic["image_id"])
    # A text-heavy page holds far more text than a page of figures; every page has some.
    by_category = dict(zip(synthetic["category"], synthetic["image_id"], strict=True))
    assert len(texts[by_category["text_heavy"]]) > 2 * len(texts[by_category["image_rich"]]) > 0
    with pytest.raises(ValueError, match="no ground-truth text column"):
        page_texts(synthetic.drop(columns=[TEXT_COLUMN]))


def test_dataset_lengths_are_each_pages_text_through_the_models_tokenizer(
    synthetic: pd.DataFrame,
):
    adapter = build_adapter(ModelSpec(preset="small"))
    assert adapter.text_tokenizer == "stand-in"
    texts = page_texts(synthetic) | {"empty": ""}
    ids = [*synthetic["image_id"], "empty"]
    lengths = OutputLength("dataset").page_lengths(ids, 100_000, texts, adapter)
    expected = {image: stand_in_token_count(texts[image]) + 1 for image in ids}
    assert dict(lengths.tokens) == expected
    assert expected["empty"] == 1 and min(expected[i] for i in synthetic["image_id"]) > 50
    capped = OutputLength("dataset").page_lengths(ids, 64, texts, adapter).tokens
    assert capped == {image: min(count, 64) for image, count in expected.items()}
    assert lengths.source.startswith("dataset: ground-truth text through the stand-in tokenizer")
    # Words with their leading space, numbers and punctuation apart.
    assert stand_in_token_count("Convert the page, 12 times.") == 7


def test_dataset_lengths_need_the_pages_text():
    dataset = OutputLength("dataset")
    with pytest.raises(OutputLengthError, match="needs each page's ground-truth text"):
        dataset.page_lengths(["a"], 32)
    adapter = build_adapter(ModelSpec(preset="small"))
    with pytest.raises(OutputLengthError, match="page b has no ground-truth text"):
        dataset.page_lengths(["a", "b"], 32, {"a": "text"}, adapter)


def test_a_manifest_without_text_reads_as_before(tmp_path: Path, synthetic: pd.DataFrame):
    older = tmp_path / "manifest.csv"
    synthetic.drop(columns=[TEXT_COLUMN]).to_csv(older, index=False)
    assert TEXT_COLUMN not in load_manifest(older).columns

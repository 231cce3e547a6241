"""tables/per_category.csv on an OmniDocBench-format set of several sources, from records
whose times are known, and its view in the report."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest

from tests.records import page_record
from vlmprof.data.image_loader import ImageLoadError, load_page
from vlmprof.data.manifest import build_manifest
from vlmprof.data.subset import select_subset
from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.metrics.aggregate import per_category_table
from vlmprof.metrics.document import MetricsDocument
from vlmprof.records import RunRecord
from vlmprof.report.quality import failed_pages_table, unprofiled_pages
from vlmprof.report.timing import category_table

SMALL = next(size for size in PAGE_SIZES if size.name == "small_scan")
# data_source -> its pages: (file name, prefill ms of repeat 0 and 1); None: a broken file.
SOURCES: dict[str, list[tuple[str, tuple[float, float] | None]]] = {
    "book": [("book_1.png", (100.0, 104.0)), ("book_2.png", (120.0, 116.0))],
    "slides": [("slides_1.png", (60.0, 62.0)), ("slides_2.png", None)],
    "exam_paper": [("exam_1.png", None)],
}
DECODE_MS = 40.0


@pytest.fixture
def bench(tmp_path: Path) -> pd.DataFrame:
    """The subset of an OmniDocBench-format JSON of every page above, images beside it."""
    images = tmp_path / "bench" / "images"
    images.mkdir(parents=True)
    entries = []
    for source, pages in SOURCES.items():
        for index, (name, times) in enumerate(pages):
            if times is None:
                (images / name).write_bytes(b"\x89PNG\r\n\x1a\n")  # a signature, nothing more
            else:
                render_page("text_heavy", SMALL, seed=0, index=index).save(images / name)
            attributes = {"data_source": source, "language": "english"}
            entries.append({"page_info": {"image_path": name, "page_attribute": attributes}})
    json_path = tmp_path / "bench" / "OmniDocBench.json"
    json_path.write_text(json.dumps(entries), encoding="utf-8")
    manifest = build_manifest("omnidocbench", str(json_path))
    return select_subset(manifest, n=len(manifest))


def profiled(subset: pd.DataFrame) -> list[dict]:
    """Two repeats of each page as the timing pass records them: an error record (its
    reason as the pass writes it) for a page that does not load, else the known prefill
    times (vision a fixed half) and decode."""
    times = {name: t for pages in SOURCES.values() for name, t in pages}
    records = []
    for image_id, path in zip(subset["image_id"], subset["path"], strict=True):
        try:
            load_page(path)
        except ImageLoadError as error:
            records += [
                RunRecord(
                    run_id="r",
                    image_id=image_id,
                    repeat=repeat,
                    status="error",
                    error=f"{type(error).__name__}: {error}",
                ).to_dict()
                for repeat in range(2)
            ]
            continue
        for repeat, prefill in enumerate(times[image_id]):
            records.append(
                page_record(
                    image_id,
                    (SMALL.width, SMALL.height),
                    repeat,
                    prefill_ms=prefill,
                    vision_ms=prefill / 2,
                    sam_ms=prefill / 4,
                    clip_ms=prefill / 8,
                    projector_ms=prefill / 8,
                    decode_ms=DECODE_MS,
                    decode_step_ms=[DECODE_MS / 2, DECODE_MS / 2],
                    tokens=3,
                )
            )
    return records


def test_per_category_table_from_known_records(bench: pd.DataFrame):
    assert sorted(set(bench["category"])) == ["book", "exam_paper", "slides"]
    categories = dict(zip(bench["image_id"], bench["category"], strict=True))
    table = per_category_table(profiled(bench), categories).set_index(["category", "stage"])
    book = [100.0, 104.0, 120.0, 116.0]
    prefill = table.loc[("book", "prefill")]
    assert prefill["mean (ms)"] == pytest.approx(statistics.mean(book))
    assert prefill["cv"] == pytest.approx(statistics.stdev(book) / statistics.mean(book))
    assert (prefill["n"], prefill["ok pages"], prefill["failed pages"]) == (4, 2, 0)
    assert table.loc[("book", "llm_prefill"), "mean (ms)"] == pytest.approx(110.0 / 2)
    slides = table.loc[("slides", "prefill")]
    assert slides["mean (ms)"] == pytest.approx(61.0)
    assert (slides["n"], slides["ok pages"], slides["failed pages"]) == (2, 1, 1)
    decode = table.loc[("slides", "decode_per_token")]
    assert (decode["mean (ms)"], decode["cv"], decode["n"]) == (DECODE_MS / 2, 0.0, 4)
    exam = table.loc["exam_paper"]
    assert exam["mean (ms)"].isna().all() and (exam["n"] == 0).all()
    assert (exam["ok pages"] == 0).all() and (exam["failed pages"] == 1).all()
    # Every category has a row for each stage any ok record measured.
    stages = set(table.loc["book"].index)
    assert {"prefill", "vision", "sam", "decode", "decode_per_token"} <= stages
    assert all(set(table.loc[c].index) == stages for c in ("slides", "exam_paper"))


def test_report_view_of_the_categories(bench: pd.DataFrame):
    categories = dict(zip(bench["image_id"], bench["category"], strict=True))
    view = category_table(per_category_table(profiled(bench), categories))
    assert list(view.index) == ["book", "exam_paper", "slides"]
    assert view.loc["slides", ["ok pages", "failed pages"]].tolist() == [1, 1]
    assert view.loc["book", "prefill (ms)"] == pytest.approx(110.0)
    assert view.loc["book", "LLM prefill (ms)"] == pytest.approx(55.0)
    assert view.loc["slides", "decode CV (%)"] == 0.0
    assert view.loc["exam_paper", ["prefill (ms)", "decode (ms)"]].isna().all()


def test_failed_pages_table_lists_each_page_once(bench: pd.DataFrame):
    records = profiled(bench)
    failures = [
        {"image_id": r["image_id"], "repeat": r["repeat"], "error": r["error"]}
        for r in records
        if r["status"] == "error"
    ]
    metrics = MetricsDocument.from_dict({"failures": failures})
    failed = failed_pages_table(metrics, bench)
    assert sorted(failed["image id"]) == ["exam_1.png", "slides_2.png"]
    row = failed.set_index("image id").loc["exam_1.png"]
    assert Path(row["path"]).name == "exam_1.png"
    assert row["failed repeats"] == 2
    assert str(row["path"]) not in row["reason"] and "ImageLoadError" in row["reason"]
    profiled_ids = ["book_1.png", "book_2.png", "slides_1.png"]
    per_image = pd.DataFrame(index=pd.Index(profiled_ids, name="image_id"))
    assert set(unprofiled_pages(failed, per_image)) == {"slides_2.png", "exam_1.png"}
    assert failed_pages_table(MetricsDocument(), bench).empty

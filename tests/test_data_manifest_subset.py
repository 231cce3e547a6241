"""Manifests from folders, OmniDocBench JSON and CSV; duplicate detection; subset selection."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from vlmprof.data.manifest import (
    MANIFEST_COLUMNS,
    build_manifest,
    duplicate_groups,
    load_manifest,
    manifest_from_folder,
    manifest_from_omnidocbench,
    write_manifest,
)
from vlmprof.data.subset import (
    page_sizes,
    readable_pages,
    select_subset,
    shard_pages,
    write_subset,
)


def _image(path: Path, size: tuple[int, int], colour: str = "white") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A nested folder: two names differing only by suffix, a duplicate, junk, a bad file and
    a file whose id would equal a nested one's."""
    root = tmp_path / "pages"
    _image(root / "b.png", (30, 40), "red")
    _image(root / "sub__c.PNG", (9, 9))
    _image(root / "a.png", (10, 20))
    _image(root / "a.jpg", (11, 21))
    _image(root / "sub" / "c.PNG", (50, 60), "red")
    _image(root / "sub" / "deeper" / "d.tiff", (7, 8))
    (root / "sub" / "deeper" / "d.tiff").with_name("copy.png").write_bytes(
        (root / "b.png").read_bytes()
    )
    (root / "broken.png").write_bytes(b"this is not a png")
    (root / "notes.txt").write_text("not an image")
    _image(root / ".hidden" / "x.png", (5, 5))
    return root


def test_folder_manifest_lists_images_sorted_with_unique_ids(image_folder: Path) -> None:
    manifest = manifest_from_folder(image_folder, category="scans")
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert list(manifest["image_id"]) == [
        "a.jpg",
        "a.png",
        "b.png",
        "broken.png",
        "sub__c.PNG",
        "sub__deeper__copy.png",
        "sub__deeper__d.tiff",
        "sub__c-2.PNG",  # the file sub__c.PNG: its id would repeat sub/c.PNG's
    ]
    assert [Path(p).relative_to(image_folder).as_posix() for p in manifest["path"]] == [
        "a.jpg",
        "a.png",
        "b.png",
        "broken.png",
        "sub/c.PNG",
        "sub/deeper/copy.png",
        "sub/deeper/d.tiff",
        "sub__c.PNG",
    ]
    assert (manifest["category"] == "scans").all()
    assert (manifest["source"] == "folder").all()
    sizes = manifest.set_index("image_id")[["width", "height"]]
    assert tuple(sizes.loc["a.jpg"]) == (11, 21)
    assert tuple(sizes.loc["a.png"]) == (10, 20)
    assert tuple(sizes.loc["sub__deeper__d.tiff"]) == (7, 8)
    for row in manifest.itertuples():
        assert row.sha256 == hashlib.sha256(Path(row.path).read_bytes()).hexdigest()


def test_unreadable_image_keeps_its_row_without_size(image_folder: Path) -> None:
    broken = manifest_from_folder(image_folder).set_index("image_id").loc["broken.png"]
    assert pd.isna(broken["width"]) and pd.isna(broken["height"])
    assert broken["sha256"] == hashlib.sha256(b"this is not a png").hexdigest()


def test_duplicate_groups_name_ids_sharing_bytes(image_folder: Path) -> None:
    manifest = manifest_from_folder(image_folder)
    assert duplicate_groups(manifest) == [["b.png", "sub__deeper__copy.png"]]
    assert duplicate_groups(manifest[manifest["image_id"] != "b.png"]) == []


def test_folder_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"dataset\.path: .*nowhere does not exist; point it"):
        manifest_from_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images")
    with pytest.raises(ValueError, match=r"empty holds no images"):
        manifest_from_folder(tmp_path / "empty")


def test_manifest_round_trip_keeps_rows_and_resolves_paths(
    image_folder: Path, tmp_path: Path
) -> None:
    manifest = manifest_from_folder(image_folder)
    manifest_path = image_folder / "manifest.csv"
    write_manifest(manifest, manifest_path)
    on_disk = pd.read_csv(manifest_path)
    assert not any(Path(p).is_absolute() for p in on_disk["path"])
    loaded = load_manifest(manifest_path)
    pd.testing.assert_frame_equal(loaded, manifest)
    elsewhere = tmp_path / "elsewhere" / "manifest.csv"
    write_manifest(manifest, elsewhere)
    assert list(load_manifest(elsewhere)["path"]) == list(manifest["path"])


def test_load_manifest_errors_name_file_and_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"manifest .*absent\.csv: file does not exist"):
        load_manifest(tmp_path / "absent.csv")
    no_sha = tmp_path / "no_sha.csv"
    no_sha.write_text("image_id,path,category,width,height,source\na,a.png,x,1,1,folder\n")
    with pytest.raises(ValueError, match=r"manifest .*no_sha\.csv: missing column 'sha256'"):
        load_manifest(no_sha)
    header = ",".join(MANIFEST_COLUMNS)
    repeated = tmp_path / "repeated.csv"
    repeated.write_text(f"{header}\na,a.png,x,1,1,s,folder\na,b.png,x,1,1,t,folder\n")
    with pytest.raises(ValueError, match=r"repeated\.csv: image_id 'a' appears more than once"):
        load_manifest(repeated)
    header_only = tmp_path / "header_only.csv"
    header_only.write_text(header + "\n")
    with pytest.raises(ValueError, match=r"header_only\.csv: has no rows"):
        load_manifest(header_only)
    no_path = tmp_path / "no_path.csv"
    no_path.write_text(f"{header}\na,,x,1,1,s,folder\n")
    with pytest.raises(ValueError, match=r"no_path\.csv: data row 1 has an empty path"):
        load_manifest(no_path)
    no_id = tmp_path / "no_id.csv"
    no_id.write_text(f"{header}\na,a.png,x,1,1,s,folder\n,b.png,x,1,1,t,folder\n")
    with pytest.raises(ValueError, match=r"no_id\.csv: data row 2 has an empty image_id"):
        load_manifest(no_id)
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    with pytest.raises(ValueError, match=r"blank\.csv: not a readable CSV"):
        load_manifest(blank)


def _omnidocbench(tmp_path: Path) -> Path:
    """A small OmniDocBench-style JSON with its images under images/."""
    images = tmp_path / "bench" / "images"
    _image(images / "book_p1.jpg", (64, 48))
    _image(images / "paper_p2.png", (30, 40))
    _image(images / "nested" / "slide.png", (80, 45))
    entries = [
        {
            "layout_dets": [],
            "page_info": {
                "page_no": 0,
                "image_path": "book_p1.jpg",
                "width": 1200,
                "height": 1600,
                "page_attribute": {
                    "data_source": "book",
                    "language": "english",
                    "layout": "single_column",
                    "watermark": False,
                },
            },
        },
        {
            "page_info": {
                "image_path": "paper_p2.png",
                "page_attribute": {"data_source": "academic_literature", "language": "chinese"},
            }
        },
        {"page_info": {"image_path": "nested/slide.png"}},
        {"page_info": {"image_path": "missing.png", "page_attribute": {"data_source": "note"}}},
    ]
    json_path = tmp_path / "bench" / "OmniDocBench.json"
    json_path.write_text(json.dumps(entries), encoding="utf-8")
    return json_path


def test_omnidocbench_json_gives_categories_sizes_and_attributes(tmp_path: Path) -> None:
    json_path = _omnidocbench(tmp_path)
    manifest = manifest_from_omnidocbench(json_path, json_path.parent / "images")
    assert tuple(manifest.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    assert {"attr_language", "attr_layout", "attr_watermark"} <= set(manifest.columns)
    assert "attr_data_source" not in manifest.columns
    rows = manifest.set_index("image_id")
    assert list(rows.index) == ["book_p1.jpg", "paper_p2.png", "nested__slide.png", "missing.png"]
    assert list(rows["category"]) == ["book", "academic_literature", "uncategorised", "note"]
    assert tuple(rows.loc["book_p1.jpg", ["width", "height"]]) == (1200, 1600)  # from the JSON
    assert tuple(rows.loc["paper_p2.png", ["width", "height"]]) == (30, 40)  # from the header
    assert rows.loc["paper_p2.png", "attr_language"] == "chinese"
    missing = rows.loc["missing.png"]
    assert pd.isna(missing["sha256"]) and pd.isna(missing["width"])
    assert (manifest["source"] == "omnidocbench").all()


def test_omnidocbench_errors(tmp_path: Path) -> None:
    json_path = _omnidocbench(tmp_path)
    with pytest.raises(ValueError, match=r"dataset\.image_root: none of the 4 images"):
        manifest_from_omnidocbench(json_path, tmp_path)
    with pytest.raises(ValueError, match=r"dataset\.image_root: .*nowhere does not exist"):
        manifest_from_omnidocbench(json_path, tmp_path / "nowhere")
    bad_entry = tmp_path / "bad_entry.json"
    bad_entry.write_text(json.dumps([{"page_info": {"image_path": "a.png"}}, {"layout": []}]))
    with pytest.raises(ValueError, match=r"bad_entry\.json entry 1 has no page_info\.image_path"):
        manifest_from_omnidocbench(bad_entry, tmp_path)
    not_list = tmp_path / "not_list.json"
    not_list.write_text(json.dumps({"page_info": {}}))
    with pytest.raises(ValueError, match=r"not_list\.json must hold a non-empty JSON list"):
        manifest_from_omnidocbench(not_list, tmp_path)
    not_json = tmp_path / "not_json.json"
    not_json.write_text("{broken")
    with pytest.raises(ValueError, match=r"not_json\.json is not valid JSON"):
        manifest_from_omnidocbench(not_json, tmp_path)


def test_build_manifest_dispatches_on_source(image_folder: Path, tmp_path: Path) -> None:
    folder = build_manifest("folder", str(image_folder), None)
    assert len(folder) == 8
    write_manifest(folder, image_folder / "manifest.csv")
    for location in (image_folder, image_folder / "manifest.csv"):
        pd.testing.assert_frame_equal(build_manifest("synthetic", str(location), None), folder)
    json_path = _omnidocbench(tmp_path)
    bench = build_manifest("omnidocbench", str(json_path), None)  # images/ beside the JSON
    assert bench["sha256"].notna().sum() == 3
    with pytest.raises(ValueError, match=r"dataset\.source: unknown 'zip'; allowed: synthetic"):
        build_manifest("zip", str(image_folder), None)
    for source in ("synthetic", "folder", "omnidocbench"):
        with pytest.raises(ValueError, match=r"dataset\.path: .*gone does not exist; point it"):
            build_manifest(source, str(tmp_path / "gone"), None)


def _manifest(counts: dict[str, int]) -> pd.DataFrame:
    rows = [
        {
            "image_id": f"{category}{i:02d}",
            "path": f"/data/{category}/{category}{i:02d}.png",
            "category": category,
            "width": 100 + i,
            "height": 200,
            "sha256": f"{category}{i}",
            "source": "folder",
        }
        for category, count in counts.items()
        for i in range(count)
    ]
    return pd.DataFrame(rows)


def test_subset_is_round_robin_over_sorted_categories() -> None:
    manifest = _manifest({"c": 4, "a": 5, "b": 2})
    subset = select_subset(manifest, n=8, seed=0)
    assert list(subset.columns) == list(manifest.columns)
    assert list(subset["category"]) == ["a", "b", "c", "a", "b", "c", "a", "c"]
    assert subset["image_id"].is_unique
    for row in subset.itertuples():
        assert row.path == f"/data/{row.category}/{row.image_id}.png"


def test_subset_is_deterministic_and_seeded() -> None:
    manifest = _manifest({"a": 6, "b": 6, "c": 6})
    first = select_subset(manifest, n=6, seed=5)
    pd.testing.assert_frame_equal(first, select_subset(manifest, n=6, seed=5))
    shuffled = manifest.sample(frac=1.0, random_state=1).reset_index(drop=True)
    pd.testing.assert_frame_equal(first, select_subset(shuffled, n=6, seed=5))
    picks = {tuple(select_subset(manifest, n=6, seed=s)["image_id"]) for s in range(8)}
    assert len(picks) > 1


def test_subset_of_one_category_does_not_depend_on_the_others() -> None:
    alone = select_subset(_manifest({"a": 6}), n=3, seed=2)
    mixed = select_subset(_manifest({"a": 6, "b": 3, "z": 3}), n=9, seed=2)
    assert list(mixed[mixed["category"] == "a"]["image_id"]) == list(alone["image_id"])


def test_subset_larger_than_manifest_takes_everything() -> None:
    manifest = _manifest({"a": 3, "b": 1})
    subset = select_subset(manifest, n=50)
    assert sorted(subset["image_id"]) == sorted(manifest["image_id"])
    with pytest.raises(ValueError, match=r"subset\.n: 0 must be at least 1"):
        select_subset(manifest, n=0)


def test_list_file_takes_exactly_the_listed_pages_in_order(tmp_path: Path) -> None:
    manifest = _manifest({"a": 3, "b": 3})
    list_file = tmp_path / "pages.txt"
    list_file.write_text(
        "# pages to profile\nb02\n\n  /data/a/a01.png\na/a00.png  # not a comment\n"
    )
    with pytest.raises(ValueError, match=r"pages\.txt names 'a/a00\.png  # not a comment'"):
        select_subset(manifest, list_file=list_file)
    list_file.write_text("# pages to profile\nb02\n\n  /data/a/a01.png\na/a00.png\n")
    subset = select_subset(manifest, n=1, list_file=list_file)
    assert list(subset["image_id"]) == ["b02", "a01", "a00"]


def test_list_file_errors_name_file_and_entry(tmp_path: Path) -> None:
    manifest = _manifest({"a": 3})
    list_file = tmp_path / "pages.txt"
    list_file.write_text("a00\nzz99\na01\nyy\n")
    with pytest.raises(ValueError, match=r"subset\.list_file: .*pages\.txt names 'zz99'"):
        select_subset(manifest, list_file=list_file)
    list_file.write_text("a00\n/data/a/a00.png\n")
    with pytest.raises(ValueError, match=r"pages\.txt names '/data/a/a00\.png' twice"):
        select_subset(manifest, list_file=list_file)
    list_file.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match=r"pages\.txt lists no images"):
        select_subset(manifest, list_file=list_file)
    with pytest.raises(ValueError, match=r"absent\.txt does not exist"):
        select_subset(manifest, list_file=tmp_path / "absent.txt")
    ambiguous = _manifest({"a": 1, "b": 1})
    ambiguous["path"] = ["/x/page.png", "/y/page.png"]
    list_file.write_text("page.png\n")
    with pytest.raises(ValueError, match=r"'page\.png' matches 2 images"):
        select_subset(ambiguous, list_file=list_file)


def test_list_file_names_pages_by_id_or_by_an_id_without_its_extension(
    image_folder: Path, tmp_path: Path
) -> None:
    manifest = manifest_from_folder(image_folder)
    list_file = tmp_path / "pages.txt"
    list_file.write_text("a.png\nbroken\nsub__deeper__d.tiff\na.jpg\n")
    subset = select_subset(manifest, list_file=list_file)
    assert list(subset["image_id"]) == ["a.png", "broken.png", "sub__deeper__d.tiff", "a.jpg"]
    list_file.write_text("a\n")
    with pytest.raises(ValueError, match=r"entry 'a' matches 2 images; use the image id"):
        select_subset(manifest, list_file=list_file)


def test_written_subset_loads_back_as_a_manifest(image_folder: Path, tmp_path: Path) -> None:
    subset = select_subset(manifest_from_folder(image_folder), n=3, seed=1)
    target = tmp_path / "run" / "inputs" / "subset.csv"
    write_subset(subset, target)
    pd.testing.assert_frame_equal(load_manifest(target), subset)
    assert [p.name for p in target.parent.iterdir()] == ["subset.csv"]


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_shards_take_every_nth_page_and_cover_the_subset_once(shards: int) -> None:
    subset = select_subset(_manifest({"a": 4, "b": 3, "c": 3}), n=10, seed=0)
    split = [shard_pages(subset, shard, shards) for shard in range(shards)]
    assert sorted(image_id for pages in split for image_id, _ in pages) == sorted(
        subset["image_id"]
    )
    for shard, pages in enumerate(split):
        assert [image_id for image_id, _ in pages] == list(subset["image_id"][shard::shards])
        assert all(isinstance(path, Path) for _, path in pages)
    # The subset alternates categories, so two shards each get some of every category.
    if shards == 2:
        by_id = dict(zip(subset["image_id"], subset["category"], strict=True))
        assert all({by_id[i] for i, _ in pages} == {"a", "b", "c"} for pages in split)


def test_a_shard_outside_the_shard_count_is_refused() -> None:
    subset = _manifest({"a": 2})
    with pytest.raises(ValueError, match="shard 2 of 2"):
        shard_pages(subset, 2, 2)


def test_readable_pages_skip_unreadable_ones_in_subset_order(image_folder: Path) -> None:
    subset = pd.DataFrame(
        {
            "image_id": ["broken", "b", "gone", "a", "c"],
            "path": [
                str(image_folder / name)
                for name in ("broken.png", "b.png", "gone.png", "a.png", "sub/c.PNG")
            ],
        }
    )
    pages = readable_pages(subset, 2, max_pixels=10_000)
    assert [(image_id, page.size) for image_id, page in pages] == [("b", (30, 40)), ("a", (10, 20))]
    # Fewer readable pages than asked for: all of them; b (1200 pixels) is now too large.
    assert [image_id for image_id, _ in readable_pages(subset, 9, max_pixels=1000)] == ["a"]


def test_page_sizes_leave_out_pages_of_unknown_size() -> None:
    subset = pd.DataFrame({"width": [100.0, None, 30.0], "height": [200.0, 50.0, 40.0]})
    assert page_sizes(subset) == [(100, 200), (30, 40)]

"""The GPU machine's wheel kit: its completeness check and the slimming of wheels."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from device_kit import closure_report, read_image, read_wheel, slim  # noqa: E402

IMAGE = {"numpy": Version("2.5.2"), "packaging": None, "torch": Version("2.11.0")}


def _wheel(tmp_path: Path, name: str, version: str, requires: list[str], files: dict) -> Path:
    """A minimal wheel: METADATA, RECORD and the given files."""
    path = tmp_path / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    members = {**files, f"{info}/METADATA": metadata}
    record = "".join(f"{member},sha256=x,1\n" for member in members) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in {**members, f"{info}/RECORD": record}.items():
            archive.writestr(member, text)
    return path


def test_requirements_are_met_by_carried_wheels_or_the_image(tmp_path: Path) -> None:
    tool = read_wheel(
        _wheel(
            tmp_path,
            "Tool",
            "1.0",
            [
                "numpy>=2",
                "helper==0.3",
                "packaging<26",
                "colorama; sys_platform == 'win32'",
                "pytest; extra == 'test'",
                "jedi>=0.18",
            ],
            {},
        )
    )
    helper = read_wheel(_wheel(tmp_path, "helper", "0.3", ["torch>=2.12"], {}))
    gaps, unchecked, omitted = closure_report([tool, helper], IMAGE, [Requirement("tool==1.0")])
    assert gaps == [
        "helper-0.3-py3-none-any.whl needs torch>=2.12, but torch 2.11.0 is what will import"
    ]
    assert unchecked == ["packaging<26 (image version not known)"]
    assert omitted == ["jedi (IPython imports it only when a completion is asked for)"]


def test_a_missing_or_doubled_project_is_a_gap(tmp_path: Path) -> None:
    first = read_wheel(_wheel(tmp_path, "tool", "1.0", ["absent>=1"], {}))
    (tmp_path / "other").mkdir()
    second = read_wheel(_wheel(tmp_path / "other", "Tool", "1.1", [], {}))
    gaps, _, _ = closure_report([first, second], IMAGE, [])
    assert any("two wheels of tool" in gap for gap in gaps)
    assert any("needs absent>=1: neither carried nor in the image" in gap for gap in gaps)


def test_slim_drops_files_and_their_record_lines(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/bin/linux/i64/solver": "x" * 100,
        "pkg/bin/osx/i64/solver": "y" * 100,
        "pkg/bin/win/i64/solver.exe": "z" * 100,
    }
    path = _wheel(tmp_path, "pkg", "1.0", [], files)
    assert slim(path, ["pkg/bin/"], keep=["pkg/bin/linux/i64/"]) == 2
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        record = archive.read("pkg-1.0.dist-info/RECORD").decode()
    assert "pkg/bin/linux/i64/solver" in names and "pkg/bin/osx/i64/solver" not in names
    assert "osx" not in record and "win" not in record and "pkg/bin/linux/i64/solver" in record
    assert read_wheel(path).version == Version("1.0")


def test_the_image_list_reads_names_and_known_versions() -> None:
    image = read_image()
    assert image["torch"] == Version("2.11.0") and image["tokenizers"] == Version("0.23.2")
    assert "pandas" in image and image["pandas"] is None


def test_the_device_environment_refuses_a_tree_without_wheels(tmp_path: Path) -> None:
    """Sourced where no kit was sent, it says what to do and returns 1, leaving the shell."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "device_env.sh"
    done = subprocess.run(
        ["bash", "-c", f"source {script}; echo returned $?"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "returned 1"
    assert "no wheels in" in done.stderr and "benchmarks/device_kit.sh" in done.stderr

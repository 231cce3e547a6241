"""The wheels carried to the GPU machine: slimmed where they ship what never runs there, and
checked to be complete against that machine's own packages.

    python benchmarks/device_kit.py slim WHEEL PREFIX [PREFIX ...] [--keep PREFIX ...]
        rewrites WHEEL without the files under the PREFIXes (its RECORD too), e.g. a solver
        built for other platforms; --keep spares a folder inside a dropped one
    python benchmarks/device_kit.py check WHEEL_DIR
        every requirement of every wheel there (and of this project) is met, for Python
        3.12 on Linux x86-64, by a carried wheel or by a package of the image
        (benchmarks/device_image.txt), versions checked where they are known; lists what
        stays unchecked and what is left out on purpose (OMITTED); exit 1 on a gap

Only `packaging` and the standard library: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import email.parser
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

HERE = Path(__file__).resolve().parent
IMAGE_LIST = HERE / "device_image.txt"
# Python and platform of the GPU machine, for environment markers.
TARGET = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
# Declared requirements deliberately not carried (the size limit of what travels), and why
# nothing breaks without them.
OMITTED = {
    "jupyterlab": "holistictraceanalysis declares it; the hta package never imports it",
    "pydot": "holistictraceanalysis declares it; the hta package never imports it",
    "jedi": "IPython imports it only when a completion is asked for",
    "debugpy": "ipykernel imports it guarded, only for its debugger",
}
# Tools this project runs on the GPU machine beyond pyproject's dependencies.
EXTRA_NEEDS = ("holistictraceanalysis==0.5.0",)


@dataclass(frozen=True)
class Wheel:
    """A carried wheel's project name, version and run-time requirements."""

    name: str
    version: Version
    requires: tuple[Requirement, ...]
    file: str


def read_wheel(path: Path) -> Wheel:
    """Name, version and Requires-Dist of a wheel, from its METADATA."""
    with zipfile.ZipFile(path) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.parser.Parser().parsestr(archive.read(metadata).decode("utf-8"))
    requires = tuple(Requirement(r) for r in message.get_all("Requires-Dist") or [])
    return Wheel(
        canonicalize_name(message["Name"]), Version(message["Version"]), requires, path.name
    )


def read_image(path: Path = IMAGE_LIST) -> dict[str, Version | None]:
    """The image's packages: name -> version, None where the version is not known."""
    packages: dict[str, Version | None] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            packages[canonicalize_name(name)] = Version(version) if version else None
    return packages


def applies(requirement: Requirement) -> bool:
    """Whether a requirement holds on the target, outside any extra."""
    marker = requirement.marker
    return marker is None or marker.evaluate(TARGET | {"extra": ""})


def project_needs(pyproject: Path) -> list[Requirement]:
    """This project's run-time dependencies and the extra tools it runs there."""
    with pyproject.open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    return [Requirement(r) for r in [*dependencies, *EXTRA_NEEDS]]


def closure_report(
    wheels: Iterable[Wheel], image: Mapping[str, Version | None], needs: Iterable[Requirement]
) -> tuple[list[str], list[str], list[str]]:
    """(gaps, requirements met only by name, omissions used) over the wheels' requirements
    and `needs`. A carried wheel shadows the image's copy of the same project."""
    wheels = list(wheels)
    carried: dict[str, Wheel] = {}
    gaps: list[str] = []
    for wheel in wheels:
        if wheel.name in carried:
            gaps.append(f"two wheels of {wheel.name}: {carried[wheel.name].file}, {wheel.file}")
        carried[wheel.name] = wheel
    unchecked, omitted = set(), set()
    wanted = [("this project", r) for r in needs]
    wanted += [(w.file, r) for w in wheels for r in w.requires]
    for who, requirement in wanted:
        if not applies(requirement):
            continue
        name = canonicalize_name(requirement.name)
        if name in carried:
            version = carried[name].version
        elif name in image:
            version = image[name]
        elif name in OMITTED:
            omitted.add(f"{name} ({OMITTED[name]})")
            continue
        else:
            gaps.append(f"{who} needs {requirement}: neither carried nor in the image")
            continue
        if version is None:
            if requirement.specifier:
                unchecked.add(f"{name}{requirement.specifier} (image version not known)")
        elif not requirement.specifier.contains(version, prereleases=True):
            gaps.append(f"{who} needs {requirement}, but {name} {version} is what will import")
    return gaps, sorted(unchecked), sorted(omitted)


def slim(path: Path, drop: Iterable[str], keep: Iterable[str] = ()) -> int:
    """Rewrite the wheel at `path` without the members under `drop` (except under `keep`),
    RECORD included; returns how many members were dropped."""
    drop, keep = tuple(drop), tuple(keep)

    def dropped(name: str) -> bool:
        return name.startswith(drop) and not name.startswith(keep)

    scratch = path.with_suffix(".slim")
    count = 0
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(scratch, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            if dropped(item.filename):
                count += 1
                continue
            data = source.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode("utf-8").splitlines(keepends=True)
                data = "".join(ln for ln in lines if not dropped(ln.split(",")[0])).encode()
            target.writestr(item, data)
    scratch.replace(path)
    return count


def main(argv: list[str] | None = None) -> int:
    """slim or check (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    slim_step = steps.add_parser("slim")
    slim_step.add_argument("wheel", type=Path)
    slim_step.add_argument("drop", nargs="+")
    slim_step.add_argument("--keep", nargs="*", default=[])
    check = steps.add_parser("check")
    check.add_argument("wheels", type=Path)
    args = parser.parse_args(argv)
    if args.step == "slim":
        count = slim(args.wheel, args.drop, args.keep)
        print(f"{args.wheel.name}: {count} files left out, {args.wheel.stat().st_size:,} bytes")
        return 0
    wheels = [read_wheel(p) for p in sorted(args.wheels.glob("*.whl"))]
    needs = project_needs(HERE.parent / "pyproject.toml")
    gaps, unchecked, omitted = closure_report(wheels, read_image(), needs)
    print(f"{len(wheels)} wheels; requirements met by version, except:")
    for line in unchecked:
        print(f"  met by name only: {line}")
    for line in omitted:
        print(f"  left out: {line}")
    for line in gaps:
        print(f"  MISSING: {line}", file=sys.stderr)
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())

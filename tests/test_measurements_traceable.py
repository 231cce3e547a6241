"""Committed measurements are traceable: every metrics.json under docs/measurements/ names
the clean commit it was measured from. Files measured before runs recorded their source
reliably are listed by path and exempt; the list may only shrink."""

from __future__ import annotations

import json
from pathlib import Path

from tests.workflow_helpers import REPO
from vlmprof.metrics.document import MetricsDocument

MEASUREMENTS = REPO / "docs" / "measurements"
# Measured from dirty trees or copies without .git, before provenance was recorded.
GRANDFATHERED = frozenset(
    {
        "h100/metrics.json",
        "repeat-h100/run-a/baseline-metrics.json",
        "repeat-h100/run-a/graphed-metrics.json",
        "repeat-h100/run-b/baseline-metrics.json",
        "repeat-h100/run-b/graphed-metrics.json",
        "repeat-h100/run-c/baseline-metrics.json",
        "repeat-h100/run-c/graphed-metrics.json",
        "repeat-h100/run-d/baseline-metrics.json",
        "repeat-h100/run-d/graphed-metrics.json",
        "scale-out-h200/a/1gpu-metrics.json",
        "scale-out-h200/a/2gpu-metrics.json",
        "scale-out-h200/b/1gpu-metrics.json",
        "scale-out-h200/b/2gpu-metrics.json",
        "scale-out-h200/c/1gpu-metrics.json",
        "scale-out-h200/c/2gpu-metrics.json",
        "variants-h100/run-a/baseline-metrics.json",
        "variants-h100/run-a/batched-metrics.json",
        "variants-h100/run-a/graphed-metrics.json",
        "variants-h100/run-a/grouped-metrics.json",
        "variants-h100/run-b/baseline-metrics.json",
        "variants-h100/run-b/graphed-metrics.json",
        "variants-h100/run-b/grouped-metrics.json",
    }
)


def untraceable(paths: list[Path]) -> list[str]:
    """Each metrics.json among `paths` without a commit or not clean, with what it records."""
    problems = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        env = MetricsDocument.from_dict(data, str(path)).environment
        commit, dirty = env.git_commit, env.git_dirty
        if not commit or dirty is not False:
            problems.append(f"{path.name}: git_commit {commit}, git_dirty {dirty}")
    return problems


def test_new_measurements_come_from_a_clean_commit():
    paths = sorted(MEASUREMENTS.glob("**/*metrics.json"))
    new = [p for p in paths if p.relative_to(MEASUREMENTS).as_posix() not in GRANDFATHERED]
    assert not untraceable(new), (
        "measure from a clean commit (git status clean, or a copy carrying "
        "`python -m vlmprof.provenance stamp`): " + "; ".join(untraceable(new))
    )


def test_the_exempt_list_names_only_existing_files():
    missing = [name for name in GRANDFATHERED if not (MEASUREMENTS / name).is_file()]
    assert not missing, f"remove from GRANDFATHERED: {missing}"


def test_dirty_and_commitless_runs_are_caught(tmp_path: Path):
    cases = {
        "clean": {"git_commit": "a" * 40, "git_dirty": False},
        "dirty": {"git_commit": "a" * 40, "git_dirty": True},
        "commitless": {"git_commit": None, "git_dirty": False},
        "unknown": {"git_commit": "a" * 40, "git_dirty": None},
    }
    for name, env in cases.items():
        (tmp_path / f"{name}-metrics.json").write_text(json.dumps({"environment": env}))
    flagged = untraceable(sorted(tmp_path.glob("*metrics.json")))
    assert [line.split("-")[0] for line in flagged] == ["commitless", "dirty", "unknown"]

"""Source provenance: commit, dirty flag and diff hash from a live checkout, else from the
VLMPROF_SOURCE_* variables, else from a stamp a copy carries; a copy edited after stamping
reads as dirty."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflow_helpers import REPO
from vlmprof.provenance import (
    ENV_COMMIT,
    ENV_DIFF,
    ENV_DIRTY,
    config_hash,
    files_sha256,
    run_stamp,
    source_state,
    write_stamp,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIFF = "ab" * 32


def _git(root: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
    ).stdout


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch folder git does not look above, so no enclosing repository is found."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return tmp_path


@pytest.fixture
def checkout(isolated: Path) -> Path:
    """The package folder of a git checkout with one commit."""
    package = isolated / "repo" / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "code.py").write_text("x = 1\n")
    _git(package, "init", "-q")
    _git(package, "add", ".")
    _git(package, "commit", "-qm", "first")
    return package


def test_clean_checkout(checkout: Path, isolated: Path):
    (checkout / "untracked.txt").write_text("not part of the source\n")
    state = source_state(checkout, env={}, stamp=isolated / "none.json")
    assert state == {
        "git_commit": _git(checkout, "rev-parse", "HEAD").decode().strip(),
        "git_dirty": False,
        "git_diff_sha256": None,
        "git_source": "git",
    }


def test_dirty_checkout_records_the_hash_of_its_diff(checkout: Path, isolated: Path):
    (checkout / "code.py").write_text("x = 2\n")
    state = source_state(checkout, env={}, stamp=isolated / "none.json")
    diff = _git(checkout, "diff", "--binary", "HEAD")
    assert state["git_dirty"] is True
    assert state["git_diff_sha256"] == hashlib.sha256(diff).hexdigest()


def test_live_checkout_wins_over_environment(checkout: Path, isolated: Path):
    env = {ENV_COMMIT: COMMIT, ENV_DIRTY: "0"}
    assert source_state(checkout, env=env, stamp=isolated / "none.json")["git_source"] == "git"


def test_matching_stamp_wins_over_an_old_checkout_under_the_copy(checkout: Path):
    # A copy of a later commit laid over a checkout of an earlier one: git calls it dirty,
    # the stamp (whose files still match) knows which commit the files are.
    (checkout / "code.py").write_text("x = 2\n")
    root, files = checkout.parents[1], ["src/pkg/code.py"]
    stamp = checkout / "_source.json"
    recorded = {"git_commit": COMMIT, "git_dirty": False, "git_diff_sha256": None}
    written = recorded | {"files": files, "package_dir": "src/pkg"}
    stamp.write_text(json.dumps(written | {"files_sha256": files_sha256(root, files)}))
    assert source_state(checkout, env={}, stamp=stamp) == recorded | {"git_source": "stamp"}
    (checkout / "code.py").write_text("x = 3\n")
    assert source_state(checkout, env={}, stamp=stamp)["git_source"] == "git"


@pytest.mark.parametrize(
    ("dirty", "diff", "expected_dirty", "expected_diff"),
    [("1", DIFF, True, DIFF), ("0", None, False, None), (None, None, None, None)],
)
def test_environment_without_a_checkout(isolated, dirty, diff, expected_dirty, expected_diff):
    env = {ENV_COMMIT: COMMIT} | ({ENV_DIRTY: dirty} if dirty else {})
    env |= {ENV_DIFF: diff} if diff else {}
    assert source_state(isolated, env=env, stamp=isolated / "none.json") == {
        "git_commit": COMMIT,
        "git_dirty": expected_dirty,
        "git_diff_sha256": expected_diff,
        "git_source": "environment",
    }


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({ENV_COMMIT: "not-a-commit"}, ENV_COMMIT),
        ({ENV_COMMIT: COMMIT, ENV_DIRTY: "maybe"}, ENV_DIRTY),
        ({ENV_COMMIT: COMMIT, ENV_DIRTY: "1", ENV_DIFF: "abc"}, ENV_DIFF),
        ({ENV_DIRTY: "0"}, ENV_COMMIT),
    ],
)
def test_bad_environment_values_are_named(isolated, env, named):
    with pytest.raises(ValueError, match=named):
        source_state(isolated, env=env, stamp=isolated / "none.json")


def test_nothing_known(isolated: Path):
    assert source_state(isolated, env={}, stamp=isolated / "none.json") == {
        "git_commit": None,
        "git_dirty": None,
        "git_diff_sha256": None,
        "git_source": "unknown",
    }


def test_stamp_needs_a_checkout(isolated: Path):
    with pytest.raises(ValueError, match="not in a git checkout"):
        write_stamp(isolated / "stamp.json", root=isolated)
    assert not (isolated / "stamp.json").exists()


def test_unreadable_stamp_is_named(isolated: Path):
    stamp = isolated / "_source.json"
    stamp.write_text("{}")
    with pytest.raises(ValueError, match="_source.json: unreadable source stamp"):
        source_state(isolated, env={}, stamp=stamp)


def test_run_stamp_adds_command_line_and_config_hash():
    stamp = run_stamp({"preset": "small", "repeats": 3}, ["bench.py", "--json", "out.json"])
    assert stamp == source_state() | {
        "argv": ["bench.py", "--json", "out.json"],
        "config_hash": config_hash({"repeats": 3, "preset": "small"}),
    }


def _copy_without_git(dest: Path) -> Path:
    """The project's files (tracked and not ignored) without .git, as a copy ships them."""
    listed = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def _show(copy: Path, **env: str) -> dict:
    """`python -m vlmprof.provenance show` run in the copy, with the copy's package."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VLMPROF_SOURCE_")}
    done = subprocess.run(
        [sys.executable, "-m", "vlmprof.provenance", "show"],
        cwd=copy,
        env=clean | {"PYTHONPATH": str(copy / "src")} | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_copy_without_git_reads_its_stamp_then_the_environment(isolated: Path):
    live = source_state()
    if live["git_source"] != "git":
        pytest.skip("needs the project's git checkout to copy from")
    copy = _copy_without_git(isolated / "copy")
    stamp = copy / "src" / "vlmprof" / "_source.json"
    subprocess.run(
        [sys.executable, "-m", "vlmprof.provenance", "stamp", "--output", str(stamp)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    assert not (copy / ".git").exists()
    assert _show(copy) == live | {"git_source": "stamp"}
    from_env = _show(copy, **{ENV_COMMIT: COMMIT, ENV_DIRTY: "0"})
    assert from_env == {
        "git_commit": COMMIT,
        "git_dirty": False,
        "git_diff_sha256": None,
        "git_source": "environment",
    }
    (copy / "Snakefile").write_text((copy / "Snakefile").read_text() + "\n# edited\n")
    assert _show(copy) == live | {
        "git_dirty": True,
        "git_diff_sha256": None,
        "git_source": "stamp, tracked files changed since stamping",
    }
    stamp.unlink()
    assert _show(copy)["git_source"] == "unknown"

"""Which source a measurement ran from: commit, dirty flag and the hash of uncommitted changes.

Read in order of trust: the live git checkout the package is imported from; else the
VLMPROF_SOURCE_COMMIT / VLMPROF_SOURCE_DIRTY / VLMPROF_SOURCE_DIFF_SHA256 environment
variables a script sets when it ships a copy of the tree; else the stamp file
`src/vlmprof/_source.json` that `python -m vlmprof.provenance stamp` writes before a copy is
made (it also lists the tracked files and their hash, so a copy edited after stamping reads
as dirty); else unknown. Torch-free, so benchmarks and tests can use it cheaply.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vlmprof.atomic import write_json_atomic

ENV_COMMIT = "VLMPROF_SOURCE_COMMIT"
ENV_DIRTY = "VLMPROF_SOURCE_DIRTY"
ENV_DIFF = "VLMPROF_SOURCE_DIFF_SHA256"
PACKAGE_DIR = Path(__file__).resolve().parent
STAMP = PACKAGE_DIR / "_source.json"

_COMMIT = re.compile(r"[0-9a-f]{7,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")
_UNKNOWN: dict[str, Any] = {
    "git_commit": None,
    "git_dirty": None,
    "git_diff_sha256": None,
    "git_source": "unknown",
}


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the key-sorted JSON of `config`: equal configs give equal hashes."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _git(root: Path, *args: str) -> bytes | None:
    """Output of a git command run in `root`, or None when it fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_text(root: Path, *args: str) -> str | None:
    output = _git(root, *args)
    return output.decode("utf-8", "replace").strip() if output is not None else None


def _checkout_state(root: Path) -> dict[str, Any] | None:
    """Commit, dirty flag and diff hash of the checkout `root` is tracked in, else None.

    A folder git does not track (an installed copy inside some other repository's
    ignored folder) is not a checkout of this source. Untracked files do not count as dirty.
    """
    if _git_text(root, "ls-files", "--error-unmatch", "--", ".") is None:
        return None
    status = _git_text(root, "status", "--porcelain", "--untracked-files=no")
    dirty = bool(status) if status is not None else None
    diff = _git(root, "diff", "--binary", "--no-color", "--no-ext-diff", "HEAD") if dirty else None
    return {
        "git_commit": _git_text(root, "rev-parse", "--verify", "--quiet", "HEAD") or None,
        "git_dirty": dirty,
        "git_diff_sha256": hashlib.sha256(diff).hexdigest() if diff is not None else None,
        "git_source": "git",
    }


def _matching(name: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    """`value` if it matches `pattern`, else a one-line error naming the variable."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{name}={value!r} is not {what}; unset it or give the right value")
    return value


def _from_environment(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The state the VLMPROF_SOURCE_* variables give, or None when none is set."""
    commit, dirty, diff = env.get(ENV_COMMIT), env.get(ENV_DIRTY), env.get(ENV_DIFF)
    if commit is None:
        if dirty is not None or diff is not None:
            raise ValueError(f"{ENV_DIRTY} or {ENV_DIFF} is set without {ENV_COMMIT}; set it too")
        return None
    flag = None if dirty is None else dirty.strip().lower()
    if flag is not None and flag not in _TRUE + _FALSE:
        raise ValueError(f"{ENV_DIRTY}={dirty!r} is not a flag; use 1 (dirty) or 0 (clean)")
    return {
        "git_commit": _matching(ENV_COMMIT, commit.strip().lower(), _COMMIT, "a commit hash"),
        "git_dirty": None if flag is None else flag in _TRUE,
        "git_diff_sha256": (
            _matching(ENV_DIFF, diff.strip().lower(), _SHA256, "a sha256") if diff else None
        ),
        "git_source": "environment",
    }


def files_sha256(root: Path, files: Sequence[str]) -> str:
    """One sha256 over the paths and contents of `files` under `root` (a missing file counts)."""
    total = hashlib.sha256()
    for name in sorted(files):
        path = root / name
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        total.update(f"{name}\0{content}\n".encode())
    return total.hexdigest()


def _stamp_root(stamp: Path, package: str) -> Path:
    """The tree's top folder, from the stamp's folder and the package's path inside the tree."""
    root = stamp.resolve().parent
    for _ in Path(package).parts:
        root = root.parent
    return root


def _from_stamp(stamp: Path) -> dict[str, Any] | None:
    """The state a stamp file records, dirty if the tracked files changed since; None if none."""
    if not stamp.is_file():
        return None
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
        state = {key: data[key] for key in ("git_commit", "git_dirty", "git_diff_sha256")}
        files, recorded, package = data["files"], data["files_sha256"], data["package_dir"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{stamp}: unreadable source stamp ({error}); rewrite it with "
            "`python -m vlmprof.provenance stamp` in the checkout, or delete it"
        ) from error
    if files_sha256(_stamp_root(stamp, package), files) == recorded:
        return state | {"git_source": "stamp"}
    return state | {
        "git_dirty": True,
        "git_diff_sha256": None,
        "git_source": "stamp, tracked files changed since stamping",
    }


def source_state(
    root: Path = PACKAGE_DIR, env: Mapping[str, str] = os.environ, stamp: Path = STAMP
) -> dict[str, Any]:
    """git_commit, git_dirty, git_diff_sha256 (when dirty) and where they were read
    (git_source: git, environment, stamp or unknown).

    A clean checkout comes first, then the environment, then a stamp whose files are
    unchanged, then a dirty checkout, then a stamp whose files changed. A stamp that still
    matches outranks a dirty checkout because a copy sent elsewhere may carry an old `.git`
    beside the stamped files (seen on a GPU machine: the tree at a later commit over a
    checkout of an earlier one, which git calls dirty).
    """
    checkout, stamped = _checkout_state(root), _from_stamp(stamp)
    verified = stamped if stamped and stamped["git_source"] == "stamp" else None
    clean = checkout if checkout and checkout["git_dirty"] is False else None
    for state in (clean, _from_environment(env), verified, checkout, stamped):
        if state is not None:
            return state
    return dict(_UNKNOWN)


def run_stamp(config: Mapping[str, Any], argv: Sequence[str] | None = None) -> dict[str, Any]:
    """What produced an output file: the source state, the command line (default: this
    process's) and the hash of its resolved configuration."""
    command = list(sys.argv if argv is None else argv)
    return {**source_state(), "argv": command, "config_hash": config_hash(config)}


def write_stamp(output: Path = STAMP, root: Path = PACKAGE_DIR) -> dict[str, Any]:
    """Record the checkout's state and its tracked files in `output`, for a copy to carry."""
    state = _checkout_state(root)
    top = _git_text(root, "rev-parse", "--show-toplevel")
    listed = _git(root, "ls-files", "-z", "--full-name", "--", ":/")
    if state is None or top is None or listed is None:
        raise ValueError(f"{root} is not in a git checkout; stamp a checkout before copying it")
    files = [name for name in listed.decode("utf-8").split("\0") if name]
    package = root.resolve().relative_to(Path(top).resolve()).as_posix()
    stamp = {key: state[key] for key in ("git_commit", "git_dirty", "git_diff_sha256")} | {
        "package_dir": package,
        "files": files,
        "files_sha256": files_sha256(Path(top), files),
    }
    write_json_atomic(output, stamp)
    return stamp


def describe(state: Mapping[str, Any]) -> str:
    """One line: the commit and whether it is clean, or why it cannot be committed as is."""
    if state["git_commit"] is None:
        return f"source: no commit known ({state['git_source']})"
    clean = {False: "clean", True: "dirty", None: "dirty flag unknown"}[state["git_dirty"]]
    return f"source: {state['git_commit'][:12]} {clean} ({state['git_source']})"


def main(argv: list[str] | None = None) -> int:
    """`stamp` writes the stamp file; `show` prints the source state as JSON."""
    parser = argparse.ArgumentParser(prog="python -m vlmprof.provenance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    stamp = commands.add_parser("stamp", help="write the stamp a copy of this tree carries")
    stamp.add_argument("--output", type=Path, default=STAMP)
    commands.add_parser("show", help="print the source state as JSON, a summary on stderr")
    args = parser.parse_args(argv)
    try:
        state = write_stamp(args.output) if args.command == "stamp" else source_state()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.command == "stamp":
        print(f"{args.output}: {describe(state | {'git_source': 'git'})}")
    else:
        print(json.dumps(state, indent=2))
        print(describe(state), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks share: which model to build, the order of arms, an arm in a process of
its own, the stamped JSON file."""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import yaml
from snakemake.utils import validate

from vlmprof.atomic import write_json_atomic
from vlmprof.models import ModelSpec
from vlmprof.provenance import run_stamp
from vlmprof.runtime.profile_settings import ProfileSettings

REPO = Path(__file__).resolve().parents[1]
Result = TypeVar("Result")


def add_model_arguments(parser: argparse.ArgumentParser, device: str = "cpu") -> None:
    """--preset, --device, --dtype, --mode, --experts and --decode, and --json."""
    parser.add_argument("--preset", default="small")
    parser.add_argument("--device", default=device)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--mode", default="gundam")
    parser.add_argument("--experts", default="eager")
    parser.add_argument("--decode", default="eager")
    parser.add_argument("--json", help="also write the measurements here")


def model_spec(args: argparse.Namespace) -> ModelSpec:
    """The model the arguments name."""
    return ModelSpec(
        preset=args.preset,
        device=args.device,
        dtype=args.dtype,
        mode=args.mode,
        experts_implementation=args.experts,
        decode=args.decode,
    )


def default_config() -> dict[str, Any]:
    """config/config.yaml as the workflow reads it: validated, the schema's defaults filled."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def profile_settings(run_id: str, **changes: Any) -> ProfileSettings:
    """The timing pass's settings of the default config (the schema's defaults filled), as
    shard 0 of run `run_id`, with `changes`."""
    settings = ProfileSettings.from_config(default_config(), shard=0)
    return dataclasses.replace(settings, run_id=run_id, **changes)


def balanced_orders(names: list[str]) -> list[list[str]]:
    """Orders of the arms in which each arm comes first, and follows each other arm, equally
    often (a Williams design), so neither position nor the arm run before biases a pair.

    Cycle through the returned orders, one per round.
    """
    n = len(names)
    base = [0]
    for step in range(1, n):
        base.append((step + 1) // 2 if step % 2 else n - step // 2)
    orders = [[names[(i + shift) % n] for i in base] for shift in range(n)]
    if n % 2:
        orders += [order[::-1] for order in orders]
    return orders


def in_own_process(function: Callable[..., Result], *args: Any) -> Result:
    """`function(*args)` in a fresh Python process (spawned, not forked), its result or its
    exception sent back; a process that dies is a BrokenProcessPool (a RuntimeError).

    One model per process: its CUDA graphs, memory and allocator state end with it, so no
    arm runs beside another's graphs (several graphed models built one after another in
    one process broke the allocator on an H100: docs/measurements/decode-paths-h100.md).
    """
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(function, *args).result()


def write_json(
    path: str | os.PathLike[str] | None, args: Mapping[str, Any], payload: dict[str, Any]
) -> None:
    """Write `payload` to `path` (if given) with the arguments and what produced it: commit,
    dirty flag, diff hash, command line and the arguments' hash (`vlmprof.provenance`)."""
    if path:
        write_json_atomic(path, {"provenance": run_stamp(args), "args": dict(args), **payload})

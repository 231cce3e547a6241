"""Command-line pieces the model benchmarks share: which model to build, and the JSON file."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vlmprof.models import ModelSpec


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


def write_json(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    """Write the arguments and `payload` to --json, if given."""
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), **payload}, handle)

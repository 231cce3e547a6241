"""DRAM bytes Nsight Compute measures in one prefill and one decode step, against our bytes.

The Python half of benchmarks/ncu_bytes.sh, in three steps:
    python benchmarks/ncu_bytes.py prepare OUT [--preset full --mode gundam --experts ...]
        writes OUT/page.png (one synthetic A4 text page), OUT/spec.json (the model) and
        OUT/timing-<range>.args, the timing command (NUL-separated) that profiles the page
        with max_new_tokens 2, i.e. one prefill and exactly one decode step, one repeat,
        NVTX ranges on, telemetry off
    python benchmarks/ncu_bytes.py check OUT RANGE
        stops with a one-line reason when ncu could not read the counters or profiled no
        kernel in the range
    python benchmarks/ncu_bytes.py report OUT [--launch-count N] [--json FILE]
        sums dram__bytes_read.sum + dram__bytes_write.sum over the kernels of each range
        (OUT/ncu-<range>.csv, ncu's `--csv` output) and sets beside it our two byte figures
        for the same page (`vlmprof.metrics.utilisation`, from the run record the profiled
        command wrote, OUT/records-<range>.jsonl): the bytes as implemented, every op's
        traffic counted over an untimed run of the page on this device (`page_work`, run
        here, outside ncu), which the check compares with; and the necessary bytes MBU
        divides by. Vision and LLM prefill have no NVTX range of their own: vision is sam +
        clip + projector, LLM prefill is prefill minus those three, each given when all its
        terms were profiled

The ranges are the NVTX ranges the timing pass pushes: decode (one step here), prefill,
and inside it sam, clip and projector. Each kernel is also classed
by its name as matmul-class (GEMMs, convolutions, attention: the ops our bytes count) or
other (norms, activations, residual adds, copies), so a gap can be traced to a class.

What the sides count: the bytes as implemented are each op's inputs read and outputs
written, as the dispatcher sees them; the necessary bytes are the weights, the KV cache read
and written and the matmul-class ops' inputs and outputs, the least any implementation
moves. ncu flushes the caches before each kernel (its default `--cache-control all`), so
every input a kernel reads comes from DRAM and is counted, while a kernel's output still
held in the 60 MB L2 when it ends is not yet written back: reads are the firmer column,
writes a lower bound.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from vlmprof.data.synthetic_pages import PAGE_SIZES, render_page
from vlmprof.flops.page_work import page_work
from vlmprof.metrics.peaks import resolve_peaks
from vlmprof.metrics.utilisation import AS_IMPLEMENTED, NECESSARY, utilisation
from vlmprof.models import spec_dims
from vlmprof.models.base import ModelSpec
from vlmprof.profiler.operators import categorize_kernel
from vlmprof.records import read_records
from vlmprof.runtime.launcher import launched_model
from vlmprof.runtime.timing_cli import timing_command

from bench_args import model_spec, profile_settings, write_json

RANGES = ("decode", "prefill", "sam", "clip", "projector")
# Ranges without an NVTX range of their own: +1/-1 times the profiled ranges they sum.
DERIVED: dict[str, dict[str, int]] = {
    "vision": {"sam": 1, "clip": 1, "projector": 1},
    "llm_prefill": {"prefill": 1, "sam": -1, "clip": -1, "projector": -1},
}
T = TypeVar("T")
NVTX_DOMAIN = "vlmprof"  # vlmprof.runtime.nvtx_ranges pushes every range in this domain
METRICS = ("dram__bytes_read.sum", "dram__bytes_write.sum")
TOLERANCE = 0.10  # the agreement the check asks of our bytes as implemented
# ncu prints SI multiples; `--print-units base` gives plain bytes.
UNITS = {"byte": 1.0, "kbyte": 1e3, "mbyte": 1e6, "gbyte": 1e9, "tbyte": 1e12}
# The operator tables' kernel categories that our bytes count (matmul-class).
MATMUL_CATEGORIES = ("dense_gemm", "convolution", "attention")
# What ncu prints when it cannot profile, and what it means here.
COUNTER_ERRORS = {
    "ERR_NVGPUCTRPERM": "ncu may not read the GPU performance counters (ERR_NVGPUCTRPERM): "
    "run as root, or load the driver with NVreg_RestrictProfilingToAdminUsers=0",
    "LibraryNotLoaded": "ncu could not load its profiling library (LibraryNotLoaded): this "
    "machine does not give access to the hardware counters (seen on gVisor machines)",
}


def nvtx_filter(range_name: str) -> str:
    """ncu's `--nvtx-include` expression for kernels inside the push/pop range, nested
    ranges included (prefill holds sam, clip and projector)."""
    return f"{NVTX_DOMAIN}@{range_name}/"


@dataclass(frozen=True)
class KernelBytes:
    """One profiled kernel's DRAM traffic."""

    id: int
    name: str
    read: float
    write: float


def _value(raw: str, unit: str, where: str) -> float:
    scale = UNITS.get(unit.strip().lower())
    if scale is None:
        raise ValueError(
            f"{where}: unit {unit!r} is not a byte unit; rerun ncu with --print-units base"
        )
    try:
        return float(raw.replace(",", "")) * scale
    except ValueError:
        raise ValueError(f"{where}: value {raw!r} is not a number") from None


def parse_ncu_csv(text: str, source: str = "ncu csv") -> list[KernelBytes]:
    """The kernels of ncu's `--csv` details output (one row per kernel and metric), in ID
    order. ncu's own messages (lines starting with '==') and anything before the header
    are skipped."""
    lines = [line for line in text.splitlines() if line and not line.startswith("==")]
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        return []
    metrics: dict[int, dict[str, float]] = {}
    names: dict[int, str] = {}
    for number, row in enumerate(csv.DictReader(lines[start:]), start=2):
        where = f"{source} row {number}"
        try:
            kernel, metric = int(row["ID"]), row["Metric Name"]
            unit, raw = row["Metric Unit"], row["Metric Value"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: not an ncu --csv details row: {row}") from None
        names[kernel] = row.get("Kernel Name") or ""
        if metric in METRICS:
            metrics.setdefault(kernel, {})[metric] = _value(raw, unit, where)
    kernels = []
    for kernel in sorted(names):
        found = metrics.get(kernel, {})
        absent = [m for m in METRICS if m not in found]
        if absent:
            raise ValueError(f"{source}: kernel {kernel} has no {', '.join(absent)}")
        kernels.append(KernelBytes(kernel, names[kernel], *(found[m] for m in METRICS)))
    return kernels


def is_matmul_class(kernel_name: str) -> bool:
    """Whether a kernel is a GEMM, convolution or attention kernel, by its name (the
    operator tables' rules, `vlmprof.profiler.operators.categorize_kernel`)."""
    return categorize_kernel(kernel_name) in MATMUL_CATEGORIES


def counter_problem(text: str) -> str | None:
    """Why ncu measured nothing, read from its output; None when nothing went wrong."""
    for marker, meaning in COUNTER_ERRORS.items():
        if marker in text:
            return meaning
    errors = [line for line in text.splitlines() if line.startswith("==ERROR==")]
    return errors[0] if errors else None


def prepare(out: Path, spec: ModelSpec) -> None:
    """The page and the timing command of each range (`timing_cli`, one page, 2 tokens)."""
    out.mkdir(parents=True, exist_ok=True)
    page = out / "page.png"
    render_page("text_heavy", PAGE_SIZES[0], seed=0, index=0).save(page)
    settings = profile_settings(
        "ncu-bytes",
        repeats=1,
        warmup_rounds=1,
        warmup_synthetic=True,
        warmup_per_image=False,
        max_new_tokens=2,
        telemetry=False,
        nvtx=True,
    )
    fields = {k: v for k, v in dataclasses.asdict(settings).items() if k != "eos_id"}
    (out / "spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=2) + "\n")
    for name in RANGES:
        command = timing_command(
            json.dumps(dataclasses.asdict(spec)),
            json.dumps(fields),
            out / f"records-{name}.jsonl",
            [("page", page)],
        )
        (out / f"timing-{name}.args").write_bytes(b"\0".join(c.encode() for c in command))


def counted_page(out: Path, spec: ModelSpec) -> dict[str, Any]:
    """The page's work counted over an untimed run of it on the spec's device (its
    `counted_work`, which carries the bytes as implemented), outside any ncu range."""
    with launched_model(spec) as (adapter, _placement):
        inputs = adapter.preprocess(Image.open(out / "page.png").convert("RGB"))
        return page_work(adapter, inputs.to(adapter.device, adapter.dtype))


def _number(value: Any) -> float | None:
    """A table cell as a number; None where it is empty (None or NaN)."""
    return None if value is None or math.isnan(value) else float(value)


def our_bytes(records: Iterable[Mapping[str, Any]], spec: ModelSpec) -> dict[str, Any]:
    """Our two byte figures for the record's prefill, its vision parts and one of its decode
    steps: `necessary` (what the MBU divides by) and `as_implemented` (None for a record
    without counted work)."""
    records = list(records)
    if len(records) != 1 or records[0].get("status") != "ok":
        raise ValueError("expected one ok run record; see the timing command's output")
    record = records[0]
    dims = spec_dims(spec.name, spec.preset, spec.overrides, spec.checkpoint)
    peaks = resolve_peaks(None, record["dtype"])
    _, _, table = utilisation(records, dims, peaks, record["dtype"])
    row = table.iloc[0]
    steps = int(row["decode_steps"])

    def figures(column: str) -> dict[str, float | None]:
        values = {name: _number(row[f"{name} {column}"]) for name in RANGES}
        decode = values["decode"]
        values["decode"] = decode / steps if decode is not None and steps else None
        return values

    return {
        "necessary": figures(NECESSARY),
        "as_implemented": figures(AS_IMPLEMENTED),
        "page": {k: record[k] for k in ("mode", "n_crops", "prefill_len", "tokens", "dtype")},
    }


@dataclass(frozen=True)
class RangeBytes:
    """ncu's DRAM bytes of one range, all kernels and the matmul-class ones apart."""

    kernels: int
    read: float
    write: float
    matmul: float  # read + write of the matmul-class kernels

    @classmethod
    def of(cls, kernels: list[KernelBytes]) -> RangeBytes:
        matmul = sum(k.read + k.write for k in kernels if is_matmul_class(k.name))
        reads, writes = sum(k.read for k in kernels), sum(k.write for k in kernels)
        return cls(len(kernels), reads, writes, matmul)

    @classmethod
    def signed_sum(cls, terms: list[tuple[int, RangeBytes]]) -> RangeBytes:
        """The sum of `sign * range` over the terms, field by field."""
        return cls(
            sum(sign * r.kernels for sign, r in terms),
            sum(sign * r.read for sign, r in terms),
            sum(sign * r.write for sign, r in terms),
            sum(sign * r.matmul for sign, r in terms),
        )


def with_derived(
    values: Mapping[str, T], signed_sum: Callable[[list[tuple[int, T]]], T]
) -> dict[str, T]:
    """`values` plus each derived range (`DERIVED`) whose terms all have a value, as the
    `signed_sum` of its terms."""
    ranges = dict(values)
    for name, terms in DERIVED.items():
        if all(values.get(term) is not None for term in terms):
            ranges[name] = signed_sum([(sign, values[term]) for term, sign in terms.items()])
    return ranges


def _signed_number_sum(terms: list[tuple[int, float]]) -> float:
    return sum(sign * value for sign, value in terms)


def comparison(
    kernels: Mapping[str, list[KernelBytes]],
    as_implemented: Mapping[str, float | None],
    necessary: Mapping[str, float | None],
    cap: int | None,
) -> list[dict[str, Any]]:
    """One row per range: ncu's summed DRAM bytes (and its matmul-class share), our bytes as
    implemented and their difference, and our necessary bytes beside them."""
    ranges = {name: RangeBytes.of(found) for name, found in kernels.items()}
    measured = with_derived(ranges, RangeBytes.signed_sum)
    implemented = with_derived(as_implemented, _signed_number_sum)
    minimum = with_derived(necessary, _signed_number_sum)
    rows = []
    for name, found in measured.items():
        total = found.read + found.write
        mine = implemented.get(name)
        difference = (total - mine) / mine if mine else None
        rows.append(
            {
                "range": name,
                "nvtx filter": nvtx_filter(name) if name in kernels else None,
                "kernels": found.kernels,
                "capped": cap is not None and name in kernels and found.kernels >= cap,
                "ncu read bytes": found.read,
                "ncu write bytes": found.write,
                "ncu read+write bytes": total,
                "ncu matmul-class bytes": found.matmul,
                "ncu other bytes": total - found.matmul,
                "our bytes as implemented": mine,
                "our necessary bytes": minimum.get(name),
                "difference": difference,
                "within 10%": difference is not None and abs(difference) <= TOLERANCE,
            }
        )
    return rows


def table_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table, bytes in MB (1e6); the difference is ncu's against our
    bytes as implemented."""
    header = (
        "| range | kernels | ncu read MB | ncu write MB | ncu read+write MB | of which "
        "matmul-class MB | other MB | ours as implemented MB | difference | within 10% "
        "| ours necessary MB |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kernels = f"{r['kernels']}{' (capped)' if r['capped'] else ''}"
        diff = "-" if r["difference"] is None else f"{r['difference'] * 100:+.1f}%"
        lines.append(
            f"| {r['range']} | {kernels} | {r['ncu read bytes'] / 1e6:.1f} | "
            f"{r['ncu write bytes'] / 1e6:.1f} | {r['ncu read+write bytes'] / 1e6:.1f} | "
            f"{r['ncu matmul-class bytes'] / 1e6:.1f} | {r['ncu other bytes'] / 1e6:.1f} | "
            f"{_megabytes(r['our bytes as implemented'])} | {diff} | "
            f"{'yes' if r['within 10%'] else 'NO'} | {_megabytes(r['our necessary bytes'])} |"
        )
    return "\n".join(lines)


def _megabytes(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f}"


def _report(args: argparse.Namespace) -> int:
    spec = ModelSpec(**json.loads((args.out / "spec.json").read_text()))
    profiled = [name for name in RANGES if (args.out / f"ncu-{name}.csv").is_file()]
    if not profiled:
        print(
            f"error: no ncu-<range>.csv in {args.out}; run benchmarks/ncu_bytes.sh", file=sys.stderr
        )
        return 1
    counted = counted_page(args.out, spec)
    kernels, implemented, necessary, pages = {}, {}, {}, {}
    for name in profiled:
        csv_path = args.out / f"ncu-{name}.csv"
        kernels[name] = parse_ncu_csv(csv_path.read_text(errors="replace"), str(csv_path))
        records = read_records([args.out / f"records-{name}.jsonl"])
        found = our_bytes([{**record, "counted_work": counted} for record in records], spec)
        implemented[name] = found["as_implemented"][name]
        necessary[name], pages[name] = found["necessary"][name], found["page"]
    rows = comparison(kernels, implemented, necessary, args.launch_count)
    page = next(iter(pages.values()))
    print(
        f"one page ({page['mode']}, {page['n_crops']} crops, prefill {page['prefill_len']} "
        f"tokens, {page['dtype']}), experts {spec.experts_implementation}: DRAM bytes per range"
    )
    print(table_text(rows))
    if any(r["capped"] for r in rows):
        print("a capped range holds more kernels than were profiled: raise MAX_KERNELS")
    named = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_json(args.json, named, {"ranges": rows, "pages": pages, "metrics": list(METRICS)})
    return 0


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _check(args: argparse.Namespace) -> int:
    table = _read(args.out / f"ncu-{args.range}.csv")
    problem = counter_problem(table + "\n" + _read(args.out / f"ncu-{args.range}.log"))
    if problem is None and not parse_ncu_csv(table):
        problem = (
            f"ncu profiled no kernel inside NVTX range {nvtx_filter(args.range)}: is the nvtx "
            "package importable (python3 -c 'import nvtx') and CUDA in use?"
        )
    if problem is not None:
        print(f"error: {args.range}: {problem}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """prepare, check or report (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    prepare_step = steps.add_parser("prepare")
    prepare_step.add_argument("out", type=Path)
    prepare_step.add_argument("--preset", default="full")
    prepare_step.add_argument("--mode", default="gundam")
    prepare_step.add_argument("--dtype", default="bfloat16")
    prepare_step.add_argument("--device", default="cuda")
    prepare_step.add_argument("--experts", default="grouped_mm")
    report = steps.add_parser("report")
    report.add_argument("out", type=Path)
    report.add_argument("--launch-count", type=int, help="ncu's --launch-count, if any")
    report.add_argument("--json", help="also write the comparison here")
    check = steps.add_parser("check")
    check.add_argument("out", type=Path)
    check.add_argument("range", choices=RANGES)
    args = parser.parse_args(argv)
    if args.step == "prepare":
        prepare(args.out, model_spec(argparse.Namespace(**vars(args), decode="eager")))
        return 0
    return _check(args) if args.step == "check" else _report(args)


if __name__ == "__main__":
    sys.exit(main())

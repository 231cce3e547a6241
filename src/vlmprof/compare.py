"""Compare two runs stage by stage and judge whether they agree, if they can be compared.

Two runs are compared only when they profiled the same pages (image ids and sha256), with
the same config (apart from the run's name and the sections naming other runs) on the same
kind of device; otherwise the comparison is refused with the difference in one line, unless
forced. Stage mean times decide the verdict (relative change within a tolerance); stages
that run on the host only (image load, preprocessing) are shown but not judged unless
asked, and MFU changes are listed for reading. Beside the ratio of means, a paired per-page
test through the comparison engine (`vlmprof.variants.paired`): B/A of each stage's times
summed over the pages both runs measured (each run's tables/per_image.csv) with its 95%
interval over the pages, none below its minimum of pages. Two runs have no A/A control, so
the drift between them is not measured and the test judges nothing: it says how closely the
pages pin the ratio down.

Usage: python -m vlmprof.compare RUN_A RUN_B [--tolerance 0.1] [--out table.md] [--force]
[--include-host-stages] (RUN_A/RUN_B: result folders holding metrics.json and
tables/per_image.csv, or their metrics.json files). Exit code 0 when every judged stage
agrees, 1 when one does not, 2 when the runs cannot be compared or read.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vlmprof.atomic import write_text_atomic
from vlmprof.metrics.document import Environment, MetricsDocument, MfuStage
from vlmprof.metrics.roofline import PEAK_COLUMNS
from vlmprof.provenance import config_hash
from vlmprof.stages import HOST_STAGES, STAGE_NAMES
from vlmprof.variants.paired import MIN_PAGES, paired_ratio

COLUMNS: tuple[str, ...] = ("kind", "A", "B", "delta %", "pass")
PAGE_COLUMNS: tuple[str, ...] = ("pages", "B/A", "95% low", "95% high", "reading")
JUDGED = "mean (ms)"
HOST = "host mean (ms)"
# Config keys that name this run or other runs: comparable runs differ in them.
OTHER_RUN_KEYS: tuple[str, ...] = ("run_name", "compare", "variants", "variant_gate")
# Config sections that change what the report shows, not what was measured.
PRESENTATION_KEYS: tuple[str, ...] = ("cost",)
PER_IMAGE = Path("tables") / "per_image.csv"
FORCE_HINT = "use --force (compare.force: true) to compare anyway"
# The way out where the workflow refuses (Snakemake has a --force of its own).
WORKFLOW_FORCE_HINT = "set compare.force: true to compare anyway"
# Differences named in a refusal before the rest are counted.
SHOWN = 3


class NotComparableError(ValueError):
    """Two runs that measured different things; the message says what differs, in one line."""


@dataclass(frozen=True)
class Comparison:
    """The judged stage table, the paired per-page test, the verdict and what was checked."""

    table: pd.DataFrame
    pages: pd.DataFrame
    verdict: str
    checked: str


def comparable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run config without the keys that name this run or other runs, or only change
    what the report shows."""
    ignored = OTHER_RUN_KEYS + PRESENTATION_KEYS
    return {key: value for key, value in config.items() if key not in ignored}


def comparable_config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the comparable config: two runs of one config under two names agree."""
    return config_hash(comparable_config(config))


def device_kind(environment: Environment) -> str | None:
    """The device a run measured: the GPU's model, or "cpu" and the CPU's model."""
    name = environment.device_name
    if name == "cpu":
        return f"cpu ({environment.cpu_model or 'model unknown'})"
    return name


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf of a nested mapping."""
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def _listed(names: list[str]) -> str:
    """Up to SHOWN names, then how many more."""
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _config_difference(a: MetricsDocument, b: MetricsDocument) -> str | None:
    """Which config keys differ, with both values, or None when the configs agree."""
    config_a, config_b = a.config, b.config
    if not config_a or not config_b:
        return f"no config recorded in run {'A' if not config_a else 'B'}'s metrics.json"
    if comparable_config_hash(config_a) == comparable_config_hash(config_b):
        return None
    leaves_a = dict(_leaves(comparable_config(config_a)))
    leaves_b = dict(_leaves(comparable_config(config_b)))
    differ = [
        f"{key} {leaves_a.get(key)!r} vs {leaves_b.get(key)!r}"
        for key in sorted(set(leaves_a) | set(leaves_b))
        if leaves_a.get(key) != leaves_b.get(key)
    ]
    return f"other config ({_listed(differ)})"


def _page_hashes(metrics: MetricsDocument) -> dict[str, str | None]:
    """image_id -> sha256 of the pages a run profiled (its metrics.json `inputs`)."""
    return {row.image_id: row.sha256 for row in metrics.inputs}


def _page_difference(a: MetricsDocument, b: MetricsDocument) -> str | None:
    """Which pages only one run profiled, or which have other bytes; None when the same."""
    pages_a, pages_b = _page_hashes(a), _page_hashes(b)
    if not pages_a or not pages_b:
        return f"no profiled pages listed in run {'A' if not pages_a else 'B'}'s metrics.json"
    only = {
        run: sorted(set(mine) - set(other))
        for run, mine, other in (("A", pages_a, pages_b), ("B", pages_b, pages_a))
    }
    if any(only.values()):
        parts = [f"only in {run}: {_listed(ids)}" for run, ids in only.items() if ids]
        return f"other pages ({'; '.join(parts)})"
    changed = sorted(i for i in pages_a if pages_a[i] != pages_b[i])
    if changed:
        return f"other page contents (sha256 differs: {_listed(changed)})"
    return None


def _device_difference(a: MetricsDocument, b: MetricsDocument) -> str | None:
    """The two devices when they differ (or are unknown), else None."""
    kind_a, kind_b = device_kind(a.environment), device_kind(b.environment)
    if kind_a is None or kind_b is None or kind_a != kind_b:
        return f"other device ({kind_a or 'unknown'} vs {kind_b or 'unknown'})"
    return None


def differences(a: MetricsDocument, b: MetricsDocument) -> list[str]:
    """Why two runs' metrics are not comparable (pages, config, device); empty when they are."""
    checks = (_page_difference, _config_difference, _device_difference)
    return [found for check in checks if (found := check(a, b)) is not None]


def refusal(found: list[str], hint: str = FORCE_HINT) -> str:
    """The one line that refuses a comparison: every difference found, then the way out."""
    return f"cannot compare: {'; '.join(found)}; {hint}"


def check_comparable(a: MetricsDocument, b: MetricsDocument, force: bool = False) -> str:
    """What the two runs share, in one line, or, with `force`, how they differ; without it a
    NotComparableError naming every difference."""
    found = differences(a, b)
    if found and not force:
        raise NotComparableError(refusal(found))
    if found:
        return "no, forced: " + "; ".join(found)
    return (
        f"same {len(a.inputs)} pages (ids and sha256), same config (sha256 "
        f"{comparable_config_hash(a.config)[:12]} without run_name), same device "
        f"({device_kind(a.environment)})"
    )


def _delta_pct(a: float | None, b: float | None) -> float | None:
    """Relative change from a to b in percent; None when either is missing or a is 0."""
    if a is None or b is None or a == 0:
        return None
    return (b - a) / a * 100.0


def _stage_rows(
    metrics_a: MetricsDocument,
    metrics_b: MetricsDocument,
    tolerance: float,
    include_host_stages: bool,
) -> list[dict[str, Any]]:
    """One row per stage measured in either run; a stage missing in one run fails. Host-only
    stages are shown with their change but not judged, unless `include_host_stages`."""
    stages_a = metrics_a.aggregates.stage_ms
    stages_b = metrics_b.aggregates.stage_ms
    rows = []
    for stage in [*stages_a, *(s for s in stages_b if s not in stages_a)]:
        a = metrics_a.aggregates.mean_ms(stage)
        b = metrics_b.aggregates.mean_ms(stage)
        delta = _delta_pct(a, b)
        judged = include_host_stages or stage not in HOST_STAGES
        rows.append(
            {
                "metric": stage,
                "kind": JUDGED if judged else HOST,
                "A": a,
                "B": b,
                "delta %": delta,
                "pass": (delta is not None and abs(delta) <= tolerance * 100.0) if judged else None,
            }
        )
    return rows


def _mfu(stages: Mapping[str, MfuStage], stage: str, column: str) -> float | None:
    """A stage's MFU at peak `column`; None where the run has none."""
    entry = stages.get(stage)
    return None if entry is None else entry.at(column)


def _mfu_rows(metrics_a: MetricsDocument, metrics_b: MetricsDocument) -> list[dict[str, Any]]:
    """MFU of each stage and peak column in both runs (informational, pass left empty)."""
    per_stage_a, per_stage_b = metrics_a.mfu.per_stage, metrics_b.mfu.per_stage
    rows = []
    for stage in [*per_stage_a, *(s for s in per_stage_b if s not in per_stage_a)]:
        for column in PEAK_COLUMNS:
            a, b = _mfu(per_stage_a, stage, column), _mfu(per_stage_b, stage, column)
            if a is None and b is None:
                continue
            rows.append(
                {
                    "metric": f"mfu {stage} ({column})",
                    "kind": "mfu",
                    "A": a,
                    "B": b,
                    "delta %": _delta_pct(a, b),
                    "pass": None,
                }
            )
    return rows


def compare_runs(
    metrics_a: MetricsDocument,
    metrics_b: MetricsDocument,
    tolerance: float = 0.10, include_host_stages: bool = False
) -> pd.DataFrame:
    """Per stage: mean A, mean B, change in percent and pass (|change| <= tolerance; empty for
    host-only stages unless `include_host_stages`); MFU too."""
    rows = _stage_rows(metrics_a, metrics_b, tolerance, include_host_stages)
    rows += _mfu_rows(metrics_a, metrics_b)
    return pd.DataFrame(rows, columns=["metric", *COLUMNS]).set_index("metric")


def verdict(df: pd.DataFrame) -> str:
    """ "PASS" when every judged row passes, else "FAIL: " and the failing stages."""
    judged = df[df["pass"].notna()]
    failing = [str(name) for name, ok in judged["pass"].items() if not ok]
    return "PASS" if not failing else "FAIL: " + ", ".join(failing)


def _inverse(value: float | None) -> float | None:
    return None if value is None else 1.0 / value


def paired_pages(per_image_a: pd.DataFrame, per_image_b: pd.DataFrame) -> pd.DataFrame:
    """Per stage, over the pages both runs measured: B/A of their summed times, its 95%
    interval over the pages (page noise only) and the engine's reading: too few pages, or
    not judged since drift between two runs is not measured (tables/per_image.csv input)."""
    rows = []
    for stage in STAGE_NAMES:
        column = f"{stage} (ms)"
        if column not in per_image_a.columns or column not in per_image_b.columns:
            continue
        a = pd.to_numeric(per_image_a[column], errors="coerce")
        b = pd.to_numeric(per_image_b[column], errors="coerce")
        a, b = a.align(b, join="inner")
        # The engine's ratio is reference over arm: A/B, inverted for the table.
        pair = paired_ratio(a.to_numpy(float), b.to_numpy(float))
        if not pair.pages:
            continue
        rows.append(
            {
                "stage": stage,
                "pages": pair.pages,
                "B/A": _inverse(pair.ratio),
                "95% low": _inverse(pair.high),
                "95% high": _inverse(pair.low),
                "reading": pair.reading,
            }
        )
    return pd.DataFrame(rows, columns=["stage", *PAGE_COLUMNS]).set_index("stage")


def _metrics_file(path: str | Path) -> Path:
    """The metrics.json a result folder (or the file itself) names."""
    path = Path(path)
    return path / "metrics.json" if path.is_dir() else path


def _read_metrics(path: str | Path) -> MetricsDocument:
    """metrics.json of a result folder (or the file itself), with a clear error if absent."""
    file = _metrics_file(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no metrics.json; run the pipeline for this run first")
    return MetricsDocument.read(file)


def _read_per_image(path: str | Path) -> pd.DataFrame:
    """tables/per_image.csv beside a run's metrics.json (each page's stage means)."""
    file = _metrics_file(path).parent / PER_IMAGE
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing; rerun the aggregate step of this run")
    return pd.read_csv(file, index_col="image_id")


def workflow_refusal(
    baseline: str | Path, run: str | Path, planned_config: Mapping[str, Any] | None = None
) -> str | None:
    """Why the workflow refuses to compare `run` with `baseline` (one line naming every
    difference and compare.force), or None; an unreadable metrics.json raises.

    Given `planned_config` (the config the run will record), it is judged where the workflow
    is planned, before the run's jobs: the run's metrics.json counts only if it recorded
    that config (else its jobs remake it); if not, only that config is judged against the
    baseline's, as the pages and device are known once the run has run. Without it, the
    run's metrics.json as it is.
    """
    base = _read_metrics(baseline)
    if planned_config is None:
        judged = _read_metrics(run)
    else:
        judged = dataclasses.replace(base, config=dict(planned_config))
        if _metrics_file(run).is_file():
            recorded = _read_metrics(run)
            planned = comparable_config_hash(planned_config)
            if comparable_config_hash(recorded.config) == planned:
                judged = recorded
    found = differences(base, judged)
    return refusal(found, WORKFLOW_FORCE_HINT) if found else None


def compare_dirs(
    dir_a: str | Path,
    dir_b: str | Path,
    tolerance: float = 0.10,
    force: bool = False,
    include_host_stages: bool = False,
) -> Comparison:
    """Compare two result folders (metrics.json and tables/per_image.csv); refuse with a
    NotComparableError when they measured different things, unless `force`."""
    metrics_a, metrics_b = _read_metrics(dir_a), _read_metrics(dir_b)
    checked = check_comparable(metrics_a, metrics_b, force)
    table = compare_runs(metrics_a, metrics_b, tolerance, include_host_stages)
    pages = paired_pages(_read_per_image(dir_a), _read_per_image(dir_b))
    return Comparison(table, pages, verdict(table), checked)


def to_markdown(comparison: Comparison, tolerance: float) -> str:
    """The comparison as Markdown: what was checked, the stage table, the paired per-page
    test and, last, the verdict line."""
    host = [str(s) for s in comparison.table.index[comparison.table["kind"] == HOST]]
    not_judged = f"; {', '.join(host)} run on the host only: shown, not judged" if host else ""
    return "\n".join(
        [
            f"Comparable: {comparison.checked}.",
            "",
            comparison.table.to_markdown(floatfmt=".4g"),
            "",
            "Paired per-page test: B/A of each stage's times summed over the pages both runs"
            " measured, with its 95% interval over the pages (page noise only; none below"
            f" {MIN_PAGES} pages). Two runs have no A/A control: the drift between them is not"
            " measured, so the test judges nothing; the tolerance on stage means decides.",
            "",
            comparison.pages.to_markdown(floatfmt=".4g"),
            "",
            f"Tolerance: {tolerance:.0%} on stage means{not_judged}. Verdict: {comparison.verdict}",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: print the comparison, optionally write it; exit 0 on PASS, 1 on FAIL,
    2 when the runs cannot be compared or read."""
    parser = argparse.ArgumentParser(
        prog="python -m vlmprof.compare", description="Compare two vlmprof runs stage by stage."
    )
    parser.add_argument("run_a", help="result folder (or metrics.json) of the baseline run")
    parser.add_argument("run_b", help="result folder (or metrics.json) of the run to judge")
    parser.add_argument(
        "--tolerance", type=float, default=0.10, help="allowed relative change (0.1 = 10%%)"
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    parser.add_argument(
        "--force",
        action="store_true",
        help="compare runs of other pages, config or device (the table says so)",
    )
    parser.add_argument(
        "--include-host-stages",
        action="store_true",
        help="also judge the host-only stages (image load, preprocess)",
    )
    args = parser.parse_args(argv)
    try:
        comparison = compare_dirs(
            args.run_a, args.run_b, args.tolerance, args.force, args.include_host_stages
        )
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = to_markdown(comparison, args.tolerance)
    print(text, end="")
    if args.out is not None:
        write_text_atomic(args.out, text)
    return 0 if comparison.verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

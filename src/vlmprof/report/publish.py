"""The publish folder: the executed pages, their Markdown copies and an index page."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

from vlmprof.atomic import write_text_atomic
from vlmprof.metrics.document import MetricsDocument

PAGE_TITLES = {
    "report": "Engineering report",
    "stakeholder_summary": "Stakeholder summary",
}


def _headline(metrics: MetricsDocument) -> list[tuple[str, str]]:
    """A few headline figures from metrics.json for the index page."""
    rows = []
    for stage in ("prefill", "vision", "decode", "decode_per_token"):
        mean = metrics.aggregates.mean_ms(stage)
        if mean is not None:
            rows.append((f"{stage} (ms, mean)", f"{mean:,.2f}"))
    env = metrics.environment
    rows.append(("device", str(env.device_name or env.device_used)))
    counts = metrics.counts
    rows.append(("records (ok / error)", f"{counts.ok} / {counts.error}"))
    return rows


def write_publish_folder(
    run_name: str,
    pages: list[Path],
    markdown: list[Path],
    metrics: MetricsDocument,
    out_index: Path,
) -> None:
    """Copy pages and Markdown next to `out_index` and write the index that links them."""
    folder = out_index.parent
    folder.mkdir(parents=True, exist_ok=True)
    for source in [*pages, *markdown]:
        shutil.copy2(source, folder / source.name)
    links = "\n".join(
        f'<li><a href="{html.escape(p.name)}">{html.escape(PAGE_TITLES.get(p.stem, p.stem))}</a>'
        f' (<a href="{html.escape(p.stem)}.md">Markdown</a>)</li>'
        for p in pages
    )
    figures = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in _headline(metrics)
    )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vlmprof: {html.escape(run_name)}</title>
<style>body{{font-family:sans-serif;max-width:48rem;margin:2rem auto}}
th{{text-align:left;padding-right:1rem}}</style></head>
<body><h1>vlmprof run <code>{html.escape(run_name)}</code></h1>
<ul>
{links}
</ul>
<h2>Headline</h2><table>
{figures}
</table></body></html>
"""
    write_text_atomic(out_index, body)

"""Both HTML pages of a real run, rendered by headless Chromium: not blank, with tables and
embedded figures."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.needs_tool import needs_tool

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1280, 4000)

pytestmark = [
    pytest.mark.slow,
    needs_tool(
        None if CHROMIUM.exists() else "/usr/bin/chromium missing: apt-get install chromium"
    ),
]


def screenshot(html: Path, png: Path, profile: Path) -> None:
    """Render `html` in headless Chromium to `png` (no network, no GPU, a fresh profile)."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        html.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and png.exists(), done.stderr[-3000:]


@pytest.mark.parametrize("notebook", ["report", "stakeholder_summary"])
def test_page_renders_with_tables_and_figures(pipeline_run: Path, tmp_path: Path, notebook: str):
    html_path = pipeline_run / f"{notebook}.html"
    html = html_path.read_text(encoding="utf-8")
    assert len(re.findall(r"<table", html)) >= 1, f"{notebook}.html has no table"
    figures = re.findall(r'<img[^>]+src="data:image/png;base64,', html)
    assert figures, f"{notebook}.html has no embedded figure"
    png = tmp_path / f"{notebook}.png"
    screenshot(html_path, png, tmp_path / "profile")
    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert pixels.shape == (WINDOW[1], WINDOW[0])
    inked = (pixels < 200).mean()
    # Text, tables and figures cover a real part of the page; a blank or error page does not.
    assert inked > 0.01, f"{notebook}: only {inked:.2%} of the screenshot is drawn"
    assert pixels.std() > 20, f"{notebook}: screenshot is nearly uniform"

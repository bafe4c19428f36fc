"""The study report in real headless chromium at the report's size (a 1280-pixel window; the page is at most
1200 wide): every image decodes, and none is shrunk below 0.6 of its pixels (its text would shrink with it
below legibility); the CLI's figures (pareto --plot, fit --plot) get the same check in a page with the
report's style. A screenshot is kept.

Skipped only when chromium is not installed (CI installs Debian's chromium in .ci/run).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
PROBE = ("<script>window.addEventListener('load',()=>{const r=document.createElement('pre');r.id='image-check';"
         "r.textContent=JSON.stringify([...document.images].map(i=>[i.complete,i.naturalWidth,i.naturalHeight,"
         "i.clientWidth]));"
         "document.body.appendChild(r);});</script>")


WINDOW = "--window-size=1280,2400"  # the report's size: body max-width 1200 px plus its margins
SMALLEST_SCALE = 0.6


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", WINDOW, *args], capture_output=True,
                          text=True, timeout=120)


def _rendered_images(page: Path, tmp_path: Path) -> list[list]:
    """[complete, naturalWidth, naturalHeight, clientWidth] of every image of ``page`` as chromium lays it out."""
    probe = page.with_name("probe.html")  # beside the page: the same relative context
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = _chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    finally:
        probe.unlink()
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dom)
    assert found, "the page's script did not run"
    return json.loads(found.group(1))


def _check_images(images: list[list]) -> None:
    assert all(complete and width > 0 and height > 0 for complete, width, height, _ in images), images
    scales = [shown / width for _, width, _, shown in images]
    assert min(scales) >= SMALLEST_SCALE, f"figures shrunk to {min(scales):.2f} of their size: {images}"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it)")
def test_report_renders_in_headless_chromium(mini_study, tmp_path):
    _, summary = mini_study
    report = Path(summary["report"])
    images = _rendered_images(report, tmp_path)
    assert len(images) == report.read_text(encoding="utf-8").count("<figure ") >= 5
    _check_images(images)
    shot = report.with_name("screenshot.png")
    _chromium(tmp_path, f"--screenshot={shot}", report.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it)")
def test_cli_figures_fit_the_report(tmp_path):
    """pareto --plot (a real sweep of a tiny model) and fit --plot (the paper's 0.1B ReLU curve) in a page
    with the report's style, at the report's size."""
    from helpers import random_eval_data, tiny_llama
    from sparsinglaw.laws import fit_all
    from sparsinglaw.laws.paper import load_paper_curve
    from sparsinglaw.laws.plots import plot_fit
    from sparsinglaw.measure import sweep
    from sparsinglaw.report.figures import pareto_plot
    from sparsinglaw.report.html import STYLE

    points = sweep(tiny_llama("relu"), random_eval_data(n_sequences=4, seq_len=32), {"cett": [0.05, 0.2, 0.5], "zero": []})
    curve = load_paper_curve("0.1b_relu")
    figures = [pareto_plot(points, tmp_path / "pareto.png", title="tiny on random ids (128 tokens)"),
               plot_fit(curve, fit_all(curve, n_boot=20).results, tmp_path / "fit.png")]
    page = tmp_path / "figures.html"
    page.write_text(f"<html><head><style>{STYLE}</style></head><body>"
                    + "".join(f'<figure><img src="{f.name}"></figure>' for f in figures) + "</body></html>",
                    encoding="utf-8")
    images = _rendered_images(page, tmp_path)
    assert len(images) == 2
    _check_images(images)

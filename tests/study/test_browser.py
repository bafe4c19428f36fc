"""The study report in real headless chromium: every image decodes (naturalWidth > 0); a screenshot is kept.

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
         "r.textContent=JSON.stringify([...document.images].map(i=>[i.complete,i.naturalWidth,i.naturalHeight]));"
         "document.body.appendChild(r);});</script>")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it)")
def test_report_renders_in_headless_chromium(mini_study, tmp_path):
    _, summary = mini_study
    report = Path(summary["report"])
    probe = report.with_name("probe.html")  # beside the report: the same relative context
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = _chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    finally:
        probe.unlink()
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dom)
    assert found, "the page's script did not run"
    images = json.loads(found.group(1))
    assert len(images) == report.read_text(encoding="utf-8").count("<figure ") >= 5
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)
    shot = report.with_name("screenshot.png")
    _chromium(tmp_path, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

"""The report only renders: it reads the analysis files, loads no model, fits nothing, and says which
command writes the files when they are missing."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from report_helpers import read

from helpers import subprocess_env
from sparsinglaw.store.layout import ANALYSIS_FILES, COMPARISON, FITS, PROBES

REPO = Path(__file__).resolve().parents[2]
FIGURES = ["1_pareto", "2_activation_vs_tokens", "0_paper_beside_live", "5a_frequency", "6_dead_neurons"]


def _refuse(*_args, **_kwargs):
    raise AssertionError("the report must not load a model or fit a law")


def test_report_renders_while_loading_and_fitting_fail(prepared_dir, tmp_path, monkeypatch):
    import sparsinglaw.laws.fit
    import sparsinglaw.models.loading
    import sparsinglaw.study.fit
    import sparsinglaw.study.probe
    import sparsinglaw.track.tracker

    for module, name in [(sparsinglaw.laws.fit, "fit_law"), (sparsinglaw.laws.fit, "fit_all"),
                         (sparsinglaw.study.fit, "fit_law"), (sparsinglaw.study.fit, "analyze"),
                         (sparsinglaw.study.probe, "probe_study"), (sparsinglaw.track.tracker, "load_checkpoint"),
                         (sparsinglaw.models.loading, "load_model")]:
        monkeypatch.setattr(module, name, _refuse)
    from sparsinglaw.report.html import write_report

    page = write_report(prepared_dir, tmp_path / "out").read_text(encoding="utf-8")
    for name in FIGURES:
        assert f'id="fig-{name}"' in page and (tmp_path / "out" / f"{name}.png").stat().st_size > 1000
    assert html.escape(read(prepared_dir, COMPARISON)["summary"]) in page
    fits = read(prepared_dir, FITS)
    silu = next(c for c in fits["cells"] if c["activation"] == "silu")
    assert silu["fit"] is not None  # the prepared curves are fitted by the stage, so the figure draws a law
    drawn = (tmp_path / "out" / "2_activation_vs_tokens.csv").read_text().splitlines()
    law_rows = [r for r in drawn if r.startswith(f"{silu['cell']},silu law,")]
    assert len(law_rows) == len(silu["fit"]["curve"]["tokens"])
    assert float(law_rows[0].split(",")[3]) == pytest.approx(silu["fit"]["curve"]["ratio"][0])


def test_rendering_imports_no_fitting_model_or_study_code(prepared_dir, tmp_path):
    script = f"""
import sys
from sparsinglaw.report.html import write_report
import sparsinglaw.cli.report
write_report({str(prepared_dir)!r}, {str(tmp_path / 'out')!r})
bad = ("torch", "transformers", "scipy", "sparsinglaw.laws", "sparsinglaw.study", "sparsinglaw.train",
       "sparsinglaw.models", "sparsinglaw.measure")
print(sorted(m for m in sys.modules if m.split(".")[0] in bad or any(m.startswith(b + ".") or m == b for b in bad)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(),
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "index.html").is_file()
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _copy_without(prepared_dir: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / "partial"
    shutil.copytree(prepared_dir, target)
    (target / name).unlink()
    return target


def test_missing_analysis_files_are_one_line_naming_the_command(prepared_dir, tmp_path):
    partial = _copy_without(prepared_dir, tmp_path, PROBES)
    out = subprocess.run([sys.executable, "-m", "sparsinglaw.cli", "report", str(partial)], capture_output=True,
                         text=True, env=subprocess_env(), cwd=REPO, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert PROBES in lines[0] and f"sparsinglaw report {partial} --analyze" in lines[0]
    assert not (partial / "report" / "index.html").exists()


def test_a_fits_file_from_before_the_analysis_files_asks_for_them(prepared_dir, tmp_path, capsys):
    import sparsinglaw.cli as cli

    old = tmp_path / "old"
    shutil.copytree(prepared_dir, old)
    fits = read(old, FITS)
    fits.pop("schema")
    (old / FITS).write_text(json.dumps(fits), encoding="utf-8")
    assert cli.main(["report", str(old)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "current fits.json" in err and "--analyze" in err
    assert set(ANALYSIS_FILES) <= {p.name for p in old.iterdir()}

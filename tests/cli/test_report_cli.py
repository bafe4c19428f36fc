"""``sparsinglaw report`` follows the CLI convention: --output/-o (``--out`` still accepted, with a warning),
--json printing the paths written as one document, defaults in --help."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sparsinglaw.cli import build_parser, main


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    """A study directory holding the analysis files (hand-made measurements; no training, no model)."""
    from report.report_helpers import prepare_study_dir

    return prepare_study_dir(tmp_path_factory.mktemp("report-cli") / "study")


def test_report_json_lists_the_files_written_and_nothing_else_on_stdout(study_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "left-by-an-older-report.png"
    stale.write_bytes(b"old")
    os.utime(stale, (1_000_000_000, 1_000_000_000))  # 2001: written before this run
    assert main(["report", str(study_dir), "-o", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # the whole of stdout is the document
    assert doc["report"] == str(out / "index.html") and doc["directory"] == str(out) and doc["moved"] is False
    files = [Path(p) for p in doc["files"]]
    assert out / "index.html" in files and out / "analysis.json" in files
    assert {p.suffix for p in files} >= {".html", ".json", ".png", ".csv"}
    assert all(p.is_file() and p.parent == out for p in files)
    assert stale not in files and "analysis" not in doc  # no --analyze: no analysis files written


def test_report_without_json_prints_the_report_line(study_dir, tmp_path, capsys):
    assert main(["report", str(study_dir), "--output", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == f"report: {tmp_path / 'r' / 'index.html'}"


def test_report_old_out_spelling_still_works_with_a_note(tmp_path):
    args = build_parser("report").parse_args(["report", "STUDY", "--out", str(tmp_path / "x")])
    assert args.output == str(tmp_path / "x")
    assert args.deprecations == ["--out is deprecated and will be removed; use --output"]
    assert build_parser("report").parse_args(["report", "STUDY"]).output is None


def test_report_help_shows_output_and_json_but_not_out(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    assert "--output PATH, -o PATH" in text and "--json" in text and "--out " not in text

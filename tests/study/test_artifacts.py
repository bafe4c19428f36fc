"""The study-to-report contract as dataclasses (sparsinglaw.store.artifacts): files written before it
(tests/data/study_analysis_v2, the analysis files of a `mini` study with input sparsity written by
sparsinglaw at commit 6a4bd2a) read back identically and still render; files a study writes now are
exactly what the analysis' dataclasses say; malformed files are one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sparsinglaw.errors import DataError
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.store.artifacts import (
    ComparisonDocument,
    FitsDocument,
    PaperDocument,
    ProbesDocument,
    SetupDocument,
)
from sparsinglaw.store.layout import COMPARISON, FITS, PAPER, PROBES, SETUP

OLD = Path(__file__).resolve().parents[1] / "data" / "study_analysis_v2"
TYPES = {FITS: FitsDocument, COMPARISON: ComparisonDocument, SETUP: SetupDocument}


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(TYPES))
def test_files_from_before_the_dataclasses_read_back_identically(name):
    raw = read(OLD / name)
    assert TYPES[name].from_dict(raw).to_dict() == raw


def test_old_files_read_as_typed_records():
    fits = FitsDocument.from_dict(read(OLD / FITS))
    assert [c.cell for c in fits.cells] == [c.cell for c in fits.inputs.cells] and len(fits.cells) == 2
    assert fits.inputs.quantity.startswith("kept share") and fits.inputs.schema is None
    for cell in fits.cells + fits.inputs.cells:
        assert cell.n_points == len(cell.points) >= 3 and cell.final_activation_ratio == cell.points[-1][1]
        assert (cell.fit is None) != (cell.fit_error is None) or cell.fit is not None
    assert all(c.bytes is not None for c in fits.inputs.cells) and all(c.bytes is None for c in fits.cells)
    comparison = ComparisonDocument.from_dict(read(OLD / COMPARISON))
    assert comparison.checks and {c.verdict for c in comparison.checks} <= {"agrees", "disagrees", "inconclusive"}
    assert sum(comparison.counts.values()) == len(comparison.checks) and comparison.inputs is not None
    assert SetupDocument.from_dict(read(OLD / SETUP)).track["input_sparsity"] is True


def test_old_files_still_render(tmp_path):
    from sparsinglaw.report.html import write_report
    from sparsinglaw.study.paper_ref import paper_document

    for name in TYPES:
        shutil.copy(OLD / name, tmp_path / name)
    atomic_write_json(tmp_path / PAPER, paper_document())
    atomic_write_json(tmp_path / PROBES, {"details": [], "pair": None, "pareto": None})
    page = write_report(tmp_path).read_text(encoding="utf-8")
    fits = FitsDocument.from_dict(read(OLD / FITS))
    assert all(c.cell in page for c in fits.cells)
    assert 'id="input-paper"' in page and ComparisonDocument.from_dict(read(OLD / COMPARISON)).summary[:40] in page


def test_a_study_writes_exactly_its_dataclasses(mini_study):
    cfg, _ = mini_study
    out = Path(cfg.out_dir)
    for name, cls in {**TYPES, PAPER: PaperDocument, PROBES: ProbesDocument}.items():
        raw = read(out / name)
        assert cls.from_dict(raw).to_dict() == raw
    from sparsinglaw.report.data import load

    data = load(out)
    assert data.setup.name == cfg.name and [c.name for c in data.cells] == [c.cell for c in data.fits_document.cells]
    assert data.fits_document.to_dict() == read(out / FITS)
    assert data.probes.details and data.paper.curves and data.paper.published_value("relu", "alpha") is not None


@pytest.mark.parametrize("doc, message", [
    ({"cells": [{"cell": "a"}], "level": 0.9}, "a model row has no 'activation'"),
    ({"cells": [], "level": 0.9, "schema": "sparsinglaw.analysis/1"}, "this sparsinglaw reads sparsinglaw.analysis/2"),
    ([], "is not a JSON object"),
])
def test_malformed_fits_are_one_line_errors(doc, message):
    with pytest.raises(DataError, match=message) as err:
        FitsDocument.from_dict(doc)
    assert "\n" not in str(err.value)

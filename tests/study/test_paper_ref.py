"""The paper's curves come from the package (or the folder SPARSINGLAW_PAPER_DATA names), never a path
outside the repository; paper.json samples each published fit for the report to draw."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sparsinglaw.laws.paper import paper_curve_names, paper_curve_path
from sparsinglaw.study import paper_ref


def test_curves_are_the_packaged_ones(monkeypatch):
    monkeypatch.delenv("SPARSINGLAW_PAPER_DATA", raising=False)
    curves = paper_ref.paper_curves()
    assert [c["name"] for c in curves] == paper_curve_names() and len(curves) == 11
    assert not hasattr(paper_ref, "REFERENCE_DIR")


def test_the_environment_names_another_folder(monkeypatch, tmp_path):
    shutil.copy(paper_curve_path("0.4b_relu"), tmp_path / "0.4b_relu.json")
    monkeypatch.setenv("SPARSINGLAW_PAPER_DATA", str(tmp_path))
    (curve,) = paper_ref.paper_curves()
    assert curve["name"] == "0.4b_relu" and curve["activation"] == "relu" and curve["fit"]["A0"] == 0.0690


def test_paper_document_draws_each_published_fit(monkeypatch):
    monkeypatch.delenv("SPARSINGLAW_PAPER_DATA", raising=False)
    doc = paper_ref.paper_document()
    assert doc["published"]["0.1b_relu"]["A0"] == 0.0614 and doc["published_mae"]["0.1b_relu"] == 4.07e-4
    for row in doc["curves"]:
        drawn = row["fit_curve"]
        assert drawn["tokens"][0] == pytest.approx(min(row["tokens"]))
        assert drawn["tokens"][-1] == pytest.approx(max(row["tokens"]))
        assert np.allclose(drawn["ratio"], paper_ref.published_law(row["name"], np.array(drawn["tokens"])))

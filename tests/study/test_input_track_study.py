"""Input sparsity through a study: tracked per checkpoint, the laws fitted to it, its verdicts, the report's
section; and studies without it keep their analysis files as they were."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from study_helpers import Tables, mini_config

from sparsinglaw.store.database import ResultsStore
from sparsinglaw.study.collect import CellData
from sparsinglaw.study.compare import compare_inputs, compare_with_paper
from sparsinglaw.study.config import FitSpec
from sparsinglaw.study.fit import analyze

TOKENS = [65_536 * (i + 1) for i in range(12)]
VERDICTS = {"agrees", "disagrees", "inconclusive"}


@pytest.fixture(scope="module")
def input_study(study_corpus, tmp_path_factory):
    """(config, summary) of the miniature study tracked with input sparsity."""
    from sparsinglaw.study import run_study

    threads = torch.get_num_threads()
    cfg = mini_config(study_corpus, tmp_path_factory.mktemp("studies") / "mini-inputs", "track.input_sparsity=true")
    try:
        summary = run_study(cfg, echo=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    return cfg, summary


def _num(text: str) -> float | None:
    return None if text.strip() in ("–", "") else float(text)


def test_each_cell_tracks_inputs_and_the_laws_are_fitted_to_them(input_study):
    cfg, _ = input_study
    fits = json.loads((Path(cfg.out_dir) / "fits.json").read_text())
    rows = {r["cell"]: r for r in fits["inputs"]["cells"]}
    assert set(rows) == {c.name for c in cfg.cells()}
    for cell in cfg.cells():
        store = ResultsStore(cell.run_dir)
        kept = store.measurements(metric="input-cett-calibrated", with_result=True)
        used = store.measurements(metric="input-bytes-cett-calibrated")
        row = rows[cell.name]
        assert row["points"] == [[r["tokens"], r["activation_ratio"]] for r in kept] and len(kept) >= 3
        assert row["bytes"] == [[r["tokens"], r["value"]] for r in used]
        assert row["metric"] == "input-cett-calibrated"
        assert (row["fit"] is None) == (row["fit_error"] is not None)  # fitted, or the reason recorded
        # the output metric's rows are untouched by the input ones
        output = {r["cell"]: r for r in fits["cells"]}[cell.name]
        assert output["metric"] == "cett-calibrated" and output["points"] != row["points"]


def test_the_verdicts_on_input_sparsity_are_written_and_reported(input_study):
    cfg, summary = input_study
    comparison = json.loads((Path(cfg.out_dir) / "comparison.json").read_text())["inputs"]
    claims = [c["claim"] for c in comparison["checks"]]
    assert any("kept input share increases" in c for c in claims)  # the SiLU cell's trend
    assert any("kept input share decreases" in c for c in claims)  # the ReLU cell's
    assert all(c["verdict"] in VERDICTS for c in comparison["checks"])
    assert sum(comparison["counts"].values()) == len(comparison["checks"])
    tables = Tables(Path(summary["report"]).read_text(encoding="utf-8")).tables
    assert [r[0] for r in tables["input-paper"][1:]] == claims
    assert [r[3] for r in tables["input-paper"][1:]] == [c["verdict"] for c in comparison["checks"]]
    fits = {r["cell"]: r for r in json.loads((Path(cfg.out_dir) / "fits.json").read_text())["inputs"]["cells"]}
    for row in tables["inputs"][1:]:
        doc = fits[row[0]]
        assert int(row[2]) == len(doc["points"])
        assert _num(row[4]) == pytest.approx(doc["points"][-1][1], rel=1e-5)
        assert _num(row[7]) == pytest.approx(doc["final_bytes_ratio"], rel=1e-5)
    page = Path(summary["report"]).read_text(encoding="utf-8")
    assert 'id="fig-7_input_kept_share"' in page
    figure_rows = (Path(summary["report"]).parent / "7_input_kept_share.csv").read_text().splitlines()
    measured = [r.split(",") for r in figure_rows[1:] if r.split(",")[1] == "measured"]
    assert len(measured) == sum(len(doc["points"]) for doc in fits.values())
    setup = json.loads((Path(cfg.out_dir) / "setup.json").read_text())
    assert setup["track"]["input_sparsity"] is True


def _cell(act: str, ratios, inputs=None) -> CellData:
    cell = CellData(f"{act}-cell", act, Path("."), 64, 4, 1.9e5, TOKENS[-1])
    cell.points = list(zip(TOKENS, ratios))
    if inputs is not None:
        cell.input_metric = "input-cett-calibrated"
        cell.input_points = list(zip(TOKENS, inputs))
        cell.input_intervals = {t: (a - 0.002, a + 0.002) for t, a in cell.input_points}
        cell.input_bytes = [(t, 0.2 + 0.8 * a) for t, a in cell.input_points]
    return cell


def test_without_input_rows_the_analysis_files_have_no_inputs_key():
    analysis = analyze([_cell("relu", np.linspace(0.10, 0.07, 12))], FitSpec(n_boot=10))
    assert analysis.inputs is None
    assert "inputs" not in analysis.to_dict() and "inputs" not in compare_with_paper(analysis)


def test_input_trends_are_judged_like_the_activation_ratio():
    relu = _cell("relu", np.linspace(0.10, 0.07, 12), np.linspace(0.50, 0.40, 12))  # falling: as the paper
    silu = _cell("silu", np.linspace(0.30, 0.36, 12), np.linspace(0.60, 0.55, 12))  # falling: against it
    analysis = analyze([relu, silu], FitSpec(n_boot=10, skip_fraction=0.25))
    assert [c.name for c in analysis.inputs.cells] == ["relu-cell", "silu-cell"]
    assert analysis.inputs.cells[0].points == relu.input_points
    verdicts = {c["claim"]: c["verdict"] for c in compare_inputs(analysis.inputs)["checks"]}
    assert verdicts["relu-cell: kept input share decreases with training tokens"] == "agrees"
    assert verdicts["silu-cell: kept input share increases with training tokens"] == "disagrees"
    assert verdicts["64x4: ReLU sparser than SiLU at every checkpoint after warmup"] == "agrees"
    section = analysis.to_dict()["inputs"]
    assert section["cells"][1]["final_bytes_ratio"] == pytest.approx(0.2 + 0.8 * 0.55)
    assert "limit A0 as published" not in " ".join(verdicts)  # the paper publishes no input-sparsity limits


def test_cells_tracked_before_the_option_was_set_are_filled_by_the_analysis(input_study, tmp_path):
    import shutil
    import sqlite3

    from sparsinglaw.study.stages import cells_missing_inputs, write_analysis

    cfg, _ = input_study
    copy = tmp_path / "study"
    shutil.copytree(cfg.out_dir, copy)
    cell = cfg.cells()[0].name
    with sqlite3.connect(copy / "cells" / cell / "results.sqlite") as db:  # as if tracked without the option
        db.execute("DELETE FROM measurements WHERE metric LIKE 'input-%'")
    assert [c.name for c, _ in cells_missing_inputs(copy)] == [cell]
    write_analysis(copy, with_pareto=False)
    assert cells_missing_inputs(copy) == []
    rows = ResultsStore(copy / "cells" / cell).measurements(metric="input-cett-calibrated")
    fits = json.loads((copy / "fits.json").read_text())
    assert {r["cell"] for r in fits["inputs"]["cells"]} == {c.name for c in cfg.cells()}
    assert [r["tokens"] for r in rows] == [t for t, _ in fits["cells"][0]["points"]]

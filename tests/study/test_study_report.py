"""End to end: a miniature study trains, tracks, fits and reports; the report matches the store."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from study_helpers import Tables

from sparsinglaw.report.html import esc, table
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.store.layout import ANALYSIS_FILES
from sparsinglaw.study.runner import read_events, run_study

# The miniature study has one size and one width-depth ratio: the width-depth and scale figures are replaced
# by one line each, and with no pretrained model configured the metric comparison runs on a cell.
FIGURES = ["1_pareto", "2_activation_vs_tokens", "0_paper_beside_live", "5a_frequency", "6_dead_neurons"]


def at_bound_dict(value, iv: dict | None) -> bool:
    from sparsinglaw.laws.results import Interval
    from sparsinglaw.report.html import at_bound

    return at_bound(value, Interval(**iv) if iv else None)


def _num(text: str) -> float | None:
    return None if text.strip() in ("–", "") else float(text)


def test_every_figure_is_written_and_embedded(mini_study):
    cfg, summary = mini_study
    report = Path(summary["report"])
    page = report.read_text(encoding="utf-8")
    for name in FIGURES:
        assert (report.parent / f"{name}.png").stat().st_size > 1000
        header = (report.parent / f"{name}.csv").read_text().splitlines()[0]
        assert "," in header
        assert f'id="fig-{name}"' in page
    images = Tables(page).images
    assert len(images) == len(FIGURES) and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in page and "https://" not in page  # opens offline: nothing fetched
    assert "Width-depth figure not drawn: needs models of one size at two or more width-depth ratios" in page
    assert not (report.parent / "3_width_depth.png").exists()
    assert summary == {**summary, "cells": 2, "run": 2, "skipped": 0}


def test_tables_equal_the_store(mini_study):
    cfg, summary = mini_study
    tables = Tables(Path(summary["report"]).read_text(encoding="utf-8")).tables
    measured = tables["measurements"][1:]
    expected = []
    for cell in cfg.cells():
        store = ResultsStore(cell.run_dir)
        for row in store.measurements(metric=cfg.track.metric, with_result=True):
            iv = (row["result"].get("interval") or {}).get("activation_ratio") or [None, None]
            expected.append((cell.name, row["tokens"], row["activation_ratio"], *iv,
                             row["result"]["dead_neuron_ratio"], row["result"]["live_activation_ratio"],
                             row["result"]["never_active_ratio"]))
    assert len(measured) == len(expected) == 16
    for got, want in zip(measured, expected):
        assert got[0] == want[0] and int(got[1]) == want[1]
        assert _num(got[2]) == pytest.approx(want[2], rel=1e-5, abs=1e-12)
        for i in (3, 4):  # the per-checkpoint interval, where the store has one
            assert (_num(got[i]) is None) if want[i] is None else _num(got[i]) == pytest.approx(want[i], rel=1e-5)
        for i in (5, 6, 7):  # dead, live-neuron ratio, never active: as tracking stored them
            assert (_num(got[i]) is None) if want[i] is None else _num(got[i]) == pytest.approx(want[i], rel=1e-5,
                                                                                                abs=1e-12)
    dead_csv = (Path(summary["report"]).parent / "6_dead_neurons.csv").read_text().splitlines()
    series = {line.split(",")[1] for line in dead_csv[1:]}
    assert {"dead", "never active"} <= series and ("live" in series) == any(w[6] is not None for w in expected)
    for row in tables["cells"][1:]:
        store = ResultsStore(Path(cfg.out_dir) / "cells" / row[0])
        assert _num(row[7]) == pytest.approx(store.points(metric=cfg.track.metric)[-1][1], rel=1e-5, abs=1e-12)
        # the mini study tracks its whole validation split, so the trainer skips its own evaluation and the
        # final loss is tracking's dense validation NLL at the last checkpoint
        assert store.measurements(metric="eval_loss") == []
        last = store.measurements(metric=cfg.track.metric, with_result=True)[-1]
        assert _num(row[8]) == pytest.approx(math.log(last["result"]["dense_ppl"]), rel=1e-5)


def test_coefficient_table_equals_fits_json(mini_study):
    cfg, summary = mini_study
    tables = Tables(Path(summary["report"]).read_text(encoding="utf-8")).tables
    fits = json.loads((Path(cfg.out_dir) / "fits.json").read_text())
    rows = tables["coefficients"][1:]
    checked = 0
    for cell in fits["cells"]:
        if not cell["fit"]:
            assert any(r[0] == cell["cell"] and r[2] == "not fitted" for r in rows)
            continue
        for name, value in cell["fit"]["params"].items():
            row = next(r for r in rows if r[0] == cell["cell"] and r[2] == name)
            if row[7].startswith("at a bound"):  # flagged, never printed as an estimate
                assert row[3:6] == ["–", "–", "–"] and at_bound_dict(value, cell["fit"]["intervals"].get(name))
                continue
            assert _num(row[3]) == pytest.approx(value, rel=1e-5, abs=1e-300)
            iv = cell["fit"]["intervals"].get(name)
            if iv:
                assert _num(row[4]) == pytest.approx(iv["low"], rel=1e-5, abs=1e-300)
                assert _num(row[5]) == pytest.approx(iv["high"], rel=1e-5, abs=1e-300)
            checked += 1
    assert checked >= 3  # at least one law fitted with its parameters and intervals


def test_verdict_is_stated_and_never_overstated(mini_study):
    cfg, summary = mini_study
    page = Path(summary["report"]).read_text(encoding="utf-8")
    tables = Tables(page).tables
    assert 'id="verdict"' in page and "agree" in page
    verdicts = [r[3] for r in tables["paper"][1:]]
    assert verdicts and set(verdicts) <= {"agrees", "disagrees", "inconclusive"}
    if "agrees" not in verdicts:
        assert "All" not in page.split('id="verdict">')[1].split("<")[0]


def test_rerun_skips_finished_cells(mini_study):
    cfg, _ = mini_study
    before = read_events(cfg.out_dir)
    summary = run_study(cfg, report=False, echo=lambda *_: None)
    assert summary["run"] == 0 and summary["skipped"] == 2
    assert read_events(cfg.out_dir) == before  # nothing trained again


def test_text_from_data_is_escaped(mini_study, tmp_path, capsys):
    cfg, _ = mini_study
    evil = tmp_path / "<script>alert(1)"  # one path component: the report names the run by it
    shutil.copytree(cfg.cells()[0].run_dir, evil)
    import sparsinglaw.cli as cli

    # A bare training run has no analysis files: --analyze writes them (fits, probes), then the report renders.
    assert cli.main(["report", str(evil), "--analyze", "--out", str(tmp_path / "out")]) == 0
    assert f"report: {tmp_path / 'out' / 'index.html'}" in capsys.readouterr().out
    assert all((evil / name).is_file() for name in ANALYSIS_FILES)
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<script" not in page.lower()
    html = table("t", ["token"], [["<script>"], ['a"b&c']])
    assert "<td>&lt;script&gt;</td>" in html and "a&quot;b&amp;c" in html and esc("<b>") == "&lt;b&gt;"
    frequency = (tmp_path / "out" / "5a_frequency.csv").read_text()
    assert frequency.startswith("cell,layer")


def test_the_study_leaves_every_file_the_report_renders(mini_study, tmp_path, monkeypatch):
    """Re-rendering the finished study needs no model and no fit: only the files its stages wrote."""
    cfg, summary = mini_study
    out = Path(cfg.out_dir)
    assert all((out / name).is_file() for name in ANALYSIS_FILES)
    comparison = json.loads((out / "comparison.json").read_text())
    import sparsinglaw.laws.fit
    import sparsinglaw.study.fit
    import sparsinglaw.study.probe
    import sparsinglaw.track.tracker

    def refuse(*_args, **_kwargs):
        raise AssertionError("the report must not load a model or fit a law")

    for module, name in [(sparsinglaw.laws.fit, "fit_law"), (sparsinglaw.study.fit, "analyze"),
                         (sparsinglaw.study.probe, "probe_study"), (sparsinglaw.track.tracker, "load_checkpoint")]:
        monkeypatch.setattr(module, name, refuse)
    from sparsinglaw.report.html import write_report

    page = write_report(out, tmp_path / "again").read_text(encoding="utf-8")
    assert esc(comparison["summary"]) in page
    first = Path(summary["report"]).read_text(encoding="utf-8")
    assert Tables(page).tables == Tables(first).tables  # the same tables as the study's own report


def test_validation_losses_mix_eval_and_tracked_per_checkpoint(tmp_path):
    """A run resumed after the study stopped the trainer's evaluation has eval_loss at early checkpoints only:
    the later ones take tracking's dense loss, never the training loss."""
    from sparsinglaw.study.collect import validation_losses

    store = ResultsStore(tmp_path)
    store.add_run("r", {"model": {}}, fingerprint="f")
    for i, tokens in enumerate((100, 200, 300)):
        store.add_checkpoint("r", f"checkpoint-{i}", step=i, tokens=tokens, path=str(tmp_path / f"c{i}"))
        store.record("r", f"checkpoint-{i}", tokens, "train_loss", value=9.0)
    store.record("r", "checkpoint-0", 100, "eval_loss", value=5.0)
    tracked = [{"tokens": t, "result": {"dense_ppl": math.exp(v)}} for t, v in ((100, 5.01), (200, 4.5), (300, 4.2))]
    got = validation_losses(store, tracked)
    assert [t for t, _ in got] == [100, 200, 300] and [v for _, v in got] == pytest.approx([5.0, 4.5, 4.2])
    assert validation_losses(store, []) == [(100, 5.0)]
    empty = ResultsStore(tmp_path / "other")
    empty.add_run("r", {"model": {}}, fingerprint="f")
    empty.add_checkpoint("r", "checkpoint-0", step=0, tokens=100, path="x")
    empty.record("r", "checkpoint-0", 100, "train_loss", value=9.0)
    assert validation_losses(empty, []) == [(100, 9.0)]

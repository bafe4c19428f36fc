"""Cells run side by side (``jobs = 2``, one process each) give what the sequential study gives."""

from __future__ import annotations

import json

import pytest
from study_helpers import mini_config, subprocess_env

from sparsinglaw.errors import SparsingLawError
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.study.parallel import cell_log, cell_timings
from sparsinglaw.study.runner import TIMINGS, read_events, run_study


def _tracked(cfg) -> dict:
    return {cell.name: ResultsStore(cell.run_dir).points(metric="pplp") for cell in cfg.cells()}


def test_parallel_cells_match_sequential(mini_study, study_corpus, tmp_path, monkeypatch):
    for key, value in subprocess_env().items():
        monkeypatch.setenv(key, value)
    sequential, _ = mini_study
    cfg = mini_config(study_corpus, tmp_path / "study", "jobs=2")
    summary = run_study(cfg, report=False, echo=lambda *_: None)
    assert summary["run"] == 2
    got, want = _tracked(cfg), _tracked(sequential)
    assert got.keys() == want.keys()
    for name in want:  # same seeds, same data, one thread each: the same numbers
        assert [t for t, _ in got[name]] == [t for t, _ in want[name]]
        assert [v for _, v in got[name]] == pytest.approx([v for _, v in want[name]], rel=1e-6)
        assert cell_log(cfg.out_dir, name).is_file() and cell_timings(cfg.out_dir, name).is_file()
    stages = json.loads((tmp_path / "study" / TIMINGS).read_text())["stages"]
    assert stages["train"] > 0 and stages["track"] > 0 and stages["cells in parallel (wall)"] > 0
    assert sorted(e["event"] for e in read_events(cfg.out_dir)) == ["done", "done", "train", "train"]
    again = run_study(cfg, report=False, echo=lambda *_: None)  # finished cells are skipped
    assert again["skipped"] == 2 and again["run"] == 0


def test_a_failing_cell_names_its_log(study_corpus, tmp_path, monkeypatch):
    from sparsinglaw.store.runs import RUN_CONFIG, RUN_INFO

    for key, value in subprocess_env().items():
        monkeypatch.setenv(key, value)
    cfg = mini_config(study_corpus, tmp_path / "study", "jobs=2")
    # The first cell's directory already holds a run of another config: its child process refuses it.
    cell = cfg.cells()[0]
    other = cell.train_config()
    other.optim.lr *= 2
    cell.run_dir.mkdir(parents=True)
    other.save(cell.run_dir / RUN_CONFIG)
    (cell.run_dir / RUN_INFO).write_text(json.dumps({"fingerprint": other.fingerprint()}), encoding="utf-8")
    (cell.run_dir / "checkpoint-4").mkdir()  # trained: a run without checkpoints would take any config
    with pytest.raises(SparsingLawError, match=r"failed \(exit 2\); its log .*\.log ends:\n.*different config"):
        run_study(cfg, report=False, echo=lambda *_: None)


def test_jobs_must_be_positive(study_corpus, tmp_path):
    from sparsinglaw.errors import ConfigError

    with pytest.raises(ConfigError, match="jobs=0 must be a whole number >= 1"):
        mini_config(study_corpus, tmp_path / "s", "jobs=0")


@pytest.mark.parametrize("summary", [{"failed": 1}, {"failed": 0, "inputs": {"failed": 2}}])
def test_a_cell_with_failed_measurements_is_not_finished(study_corpus, tmp_path, monkeypatch, summary):
    from sparsinglaw.study import runner

    cfg = mini_config(study_corpus, tmp_path / "study")
    cell = cfg.cells()[0]
    monkeypatch.setattr(runner, "train_cell", lambda *a: None)
    monkeypatch.setattr(runner, "backfill_losses", lambda *a: 0)
    monkeypatch.setattr(runner, "track_cell", lambda *a: summary)
    with pytest.raises(SparsingLawError, match=r"measurement\(s\) failed"):
        runner.run_cell(cell, cfg)
    assert not runner.is_done(cell)

"""A study whose cells are each handed to torchrun (2 CPU processes, gloo) gives a tracked, fitted study."""

from __future__ import annotations

import pytest
from study_helpers import mini_config, subprocess_env

from sparsinglaw.store.database import ResultsStore
from sparsinglaw.study.runner import read_events, run_study


@pytest.mark.slow
def test_cells_under_torchrun(study_corpus, tmp_path, monkeypatch):
    for key, value in subprocess_env().items():
        monkeypatch.setenv(key, value)
    cfg = mini_config(study_corpus, tmp_path / "study", "launcher='torchrun'", "nproc=2", "activations=['relu']",
                      "base.batch_size=2")
    summary = run_study(cfg, report=False, echo=lambda *_: None)
    assert summary["run"] == 1
    (cell,) = cfg.cells()
    points = ResultsStore(cell.run_dir).points(metric="pplp")
    assert [t for t, _ in points] == [256 * i for i in range(1, 9)]
    assert [e["event"] for e in read_events(cfg.out_dir)] == ["train", "done"]

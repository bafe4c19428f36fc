"""``sparsinglaw eval`` run outside a git checkout prints no ``fatal: not a git repository`` (lm-eval's own
git lookup does not capture its stderr)."""

from __future__ import annotations

import pytest

from sparsinglaw.cli import main

pytest.importorskip("lm_eval")


def test_eval_outside_a_checkout_has_no_git_noise(tiny_dir, tiny_thresholds_file, mc_task, tmp_path, monkeypatch,
                                                  capfd):
    import lm_eval.evaluator

    assert hasattr(lm_eval.evaluator, "get_git_commit_hash")  # what the quiet lookup replaces
    include, task = mc_task
    monkeypatch.chdir(tmp_path)
    code = main(["eval", "--model", str(tiny_dir), "--thresholds", str(tiny_thresholds_file), "--tasks", task,
                 "--include-path", str(include), "--limit", "2", "--bootstrap-iters", "0",
                 "--lm-eval-args", "cache_requests=False"])
    err = capfd.readouterr().err
    assert code == 0, err[-2000:]
    assert "fatal:" not in err and "not a git repository" not in err
    assert lm_eval.evaluator.get_git_commit_hash.__module__ == "lm_eval.loggers.utils"  # restored afterwards

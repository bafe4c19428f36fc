"""Stopping a study (SIGINT, then SIGKILL) and starting it again: same results, no cell trained twice."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from study_helpers import PYTHON, mini_config, subprocess_env

from helpers import default_sigint
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.store.runs import complete_checkpoints
from sparsinglaw.study.runner import read_events


def _start(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "sparsinglaw.cli.study", str(config), "--no-report"],
                            env=subprocess_env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            preexec_fn=default_sigint)


def _wait(proc: subprocess.Popen, ready, timeout: float = 300.0) -> bool:
    """Poll until ``ready()`` (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the study did not reach the expected point in time")


def _values(cfg) -> dict:
    out = {}
    for cell in cfg.cells():
        for row in ResultsStore(cell.run_dir).measurements():
            out[(cell.name, row["checkpoint"], row["metric"])] = row["value"]
    return out


def test_interrupted_study_resumes_to_the_same_results(mini_study, study_corpus, tmp_path):
    reference, _ = mini_study
    cfg = mini_config(study_corpus, tmp_path / "study")
    config = cfg.save(tmp_path / "study.toml")
    first, second = cfg.cells()
    log = tmp_path / "log.txt"

    proc = _start(config, log)  # stop it with SIGINT once the first cell is done and the second has begun
    if _wait(proc, lambda: len(complete_checkpoints(second.run_dir)) >= 1):
        proc.send_signal(signal.SIGINT)
    assert proc.wait(60) in (0, 130), log.read_text()[-2000:]

    proc = _start(config, log)  # then kill it hard after one more checkpoint
    done = len(complete_checkpoints(second.run_dir))
    if _wait(proc, lambda: len(complete_checkpoints(second.run_dir)) > done):
        proc.kill()
    proc.wait(60)

    proc = _start(config, log)
    assert proc.wait(300) == 0, log.read_text()[-2000:]

    events = read_events(cfg.out_dir)
    trained = [e["cell"] for e in events if e["event"] == "train"]
    assert trained.count(first.name) == 1  # finished before the first stop: never trained again
    assert [e["cell"] for e in events if e["event"] == "done"] == [first.name, second.name]
    resumes = [e["resume_from"] for e in events if e["event"] == "train" and e["cell"] == second.name]
    assert len(resumes) >= 2 and all(r is not None for r in resumes[1:])  # each restart continued a checkpoint
    got, want = _values(cfg), _values(reference)
    assert got.keys() == want.keys() and len(got) >= 16
    for key, value in want.items():
        if key[2] == "train_loss":  # a logged running mean: after a resume it averages fewer steps
            continue
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key

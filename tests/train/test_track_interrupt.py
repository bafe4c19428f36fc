"""``sparsinglaw track`` stopped by a real SIGINT (Ctrl-C) keeps every checkpoint it finished and says where,
and its progress lines (pass count, setting and ratio, what is left) reach a log file (issue 29, point 5)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from train_helpers import PYTHON, REPO, subprocess_env

from helpers import default_sigint
from sparsinglaw.store.database import ResultsStore

# The real CLI, pausing before it loads the checkpoint after the first one stored, so that the test's SIGINT
# lands while the next checkpoint is under way.
WORKER = """
import sys, time, torch
torch.set_num_threads(1)
from sparsinglaw.track import tracker as track_module
from sparsinglaw.cli import main
store_row, load, stored = track_module._store_row, track_module.load_checkpoint, []
def store_and_note(*args, **kwargs):
    store_row(*args, **kwargs)
    stored.append(1)
def pause_then_load(path):
    if stored:
        time.sleep(60)
    return load(path)
track_module._store_row, track_module.load_checkpoint = store_and_note, pause_then_load
sys.exit(main(["track", *sys.argv[1:]]))
"""


def interrupted_track(run_dir, log_path, mode: str) -> tuple[int, str]:
    """Run track in ``mode`` with stderr to a file, SIGINT it once a first row of it is stored; (exit code,
    the log)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen([PYTHON, "-c", WORKER, str(run_dir), "--max-tokens", "256", "--batch-size", "4",
                                 "--threads", "1", "--mode", mode], cwd=REPO, env=subprocess_env(),
                                stdout=subprocess.DEVNULL, stderr=log, preexec_fn=default_sigint)
        try:
            deadline = time.monotonic() + 240
            while not ResultsStore(run_dir).measurements(metric=mode):
                assert proc.poll() is None, log_path.read_text()[-2000:]
                assert time.monotonic() < deadline, "no row stored within 4 minutes"
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        finally:
            proc.kill()
            proc.wait()
    return code, log_path.read_text()


@pytest.mark.parametrize("mode", ["pplp", "cett-calibrated"])
def test_sigint_keeps_the_finished_checkpoints_and_says_where(run_copy, tmp_path, mode):
    code, said = interrupted_track(run_copy, tmp_path / "track.log", mode)
    store = ResultsStore(run_copy)
    rows = store.measurements(metric=mode, with_result=True)
    assert code == 130 and "Traceback" not in said
    assert [r["checkpoint"] for r in rows] == ["checkpoint-4"]
    assert f"interrupted: kept 1 checkpoint(s) of {mode} (checkpoint-4) in {store.path}" in said
    if mode == "cett-calibrated":
        cett = rows[0]["result"]["setting"]["cett"]
        assert f"at the calibrated CETT {cett:.4g}; the other checkpoints keep" in said
        assert "calibrated CETT: pass 1 of at most" in said  # the calibration's search, pass by pass
    else:
        assert "PPL-p% search: pass 1 of at most 12, CETT 0.05 -> PPL ratio" in said
    # Each stored checkpoint: its count, setting and ratios, and how many are left, in the log file.
    assert f"track {mode}: checkpoint 1 of 3 (checkpoint-4) at CETT" in said and "; 2 left" in said
    assert store.claims() == []


def test_an_interrupt_before_anything_is_stored_says_nothing_was_written(run_copy, monkeypatch, capsys):
    from sparsinglaw.cli import main
    from sparsinglaw.track import tracker as track_module

    def interrupted(path):  # while loading the checkpoints to calibrate on: nothing measured yet
        raise KeyboardInterrupt

    monkeypatch.setattr(track_module, "load_checkpoint", interrupted)
    assert main(["track", str(run_copy), "--max-tokens", "256"]) == 130
    assert "interrupted: nothing finished, so no results were written" in capsys.readouterr().err
    assert ResultsStore(run_copy).measurements(metric="cett-calibrated") == []


@pytest.mark.parametrize("mode", ["pplp", "cett-calibrated"])
def test_an_interrupt_just_after_a_row_is_written_counts_that_row(run_copy, monkeypatch, capsys, mode):
    """Ctrl-C can land between the store's write and the note of it: the store is asked, not the note."""
    from sparsinglaw.cli import main
    from sparsinglaw.track import tracker as track_module

    store_row = track_module._store_row

    def interrupted_after_writing(*args, **kwargs):
        store_row(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(track_module, "_store_row", interrupted_after_writing)
    code = main(["track", str(run_copy), "--mode", mode, "--max-tokens", "256", "--batch-size", "4"])
    store = ResultsStore(run_copy)
    assert code == 130 and [r["checkpoint"] for r in store.measurements(metric=mode)] == ["checkpoint-4"]
    assert f"interrupted: kept 1 checkpoint(s) of {mode} (checkpoint-4) in {store.path}" in capsys.readouterr().err

"""Concurrent tracking: checkpoints are claimed in the results store, so two ``track`` processes on one run
measure each checkpoint once; claims of dead processes are taken over; an interrupted track says what it stored."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time

import pytest
from train_helpers import PYTHON, run_side_by_side

from sparsinglaw.store.database import ResultsStore
from sparsinglaw.track import tracker as track_module
from sparsinglaw.track.tracker import TrackSettings, track

SETTINGS = TrackSettings(mode="pplp", max_tokens=256, batch_size=4)

# Imports everything, then waits for the go file so both processes start measuring at the same moment.
WORKER = """
import json, os, sys, time
import torch
torch.set_num_threads(1)
from sparsinglaw.track.tracker import TrackSettings, track
run_dir, go = sys.argv[1], sys.argv[2]
open(go + "." + str(os.getpid()), "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
print(json.dumps(track(run_dir, TrackSettings(mode="pplp", max_tokens=256, batch_size=4))))
"""


def _key(run_dir, name: str) -> tuple:
    run_id = track_module.complete(run_dir)[0]["run_id"]
    return (run_id, name, "pplp", SETTINGS.setting())


def test_two_processes_measure_each_checkpoint_once(run_copy, tmp_path):
    counts = run_side_by_side(WORKER, run_copy, tmp_path)
    assert sum(c["measured"] for c in counts) == 3, counts  # 3 checkpoints, none measured twice
    assert all(c["measured"] + c["already"] + c.get("elsewhere", 0) == 3 for c in counts), counts
    store = ResultsStore(run_copy)
    assert [r["checkpoint"] for r in store.measurements(metric="pplp")] == [
        "checkpoint-4", "checkpoint-8", "checkpoint-12"]
    assert store.claims() == []  # every claim released


def test_a_live_claim_is_skipped_and_a_dead_ones_is_taken_over(run_copy):
    store = ResultsStore(run_copy)
    sleeper = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([PYTHON, "-c", "pass"])
    dead.wait()
    try:
        with store._write() as db:
            for name, pid in (("checkpoint-4", sleeper.pid), ("checkpoint-8", dead.pid)):
                key = _key(run_copy, name)
                db.execute("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (key[0], key[1], key[2], json.dumps(key[3], sort_keys=True, separators=(",", ":")),
                            pid, socket.gethostname(), time.time()))
        assert not store.claim(*_key(run_copy, "checkpoint-4"))
        assert track(run_copy, SETTINGS) == {"measured": 2, "already": 0, "failed": 0, "elsewhere": 1}
        measured = {r["checkpoint"] for r in store.measurements(metric="pplp")}
        assert measured == {"checkpoint-8", "checkpoint-12"}
        assert [c["pid"] for c in store.claims()] == [sleeper.pid]  # the live process keeps its claim
    finally:
        sleeper.kill()
        sleeper.wait()
    assert track(run_copy, SETTINGS) == {"measured": 1, "already": 2, "failed": 0}  # its owner died: taken over


def test_old_claims_from_other_hosts_expire(run_copy):
    store = ResultsStore(run_copy)
    assert store.claim(*_key(run_copy, "checkpoint-4"))
    assert store.claim(*_key(run_copy, "checkpoint-4"))  # this process again: still its own
    with store._write() as db:
        db.execute("UPDATE claims SET host='elsewhere', pid=1, claimed=?", (time.time() - 60,))
    assert not store.claim(*_key(run_copy, "checkpoint-4"))
    assert store.claim(*_key(run_copy, "checkpoint-4"), ttl=30)
    store.record(_key(run_copy, "checkpoint-4")[0], "checkpoint-4", 512, "pplp", setting=SETTINGS.setting(), value=0.5)
    assert not store.claim(*_key(run_copy, "checkpoint-4"))  # measured: nothing to claim


def test_interrupted_track_says_what_it_stored(run_copy, monkeypatch, caplog):
    real = track_module.load_checkpoint
    calls = []

    def interrupt_second(path):
        calls.append(path.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(track_module, "load_checkpoint", interrupt_second)
    with caplog.at_level(logging.WARNING, logger="sparsinglaw"), pytest.raises(KeyboardInterrupt):
        track(run_copy, SETTINGS)
    message = caplog.records[-1].getMessage()
    assert f"while measuring {calls[1]}" in message and "stored 1 checkpoint(s)" in message and calls[0] in message
    store = ResultsStore(run_copy)
    assert [r["checkpoint"] for r in store.measurements(metric="pplp")] == [calls[0]]
    assert store.claims() == []

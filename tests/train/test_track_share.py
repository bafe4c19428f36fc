"""Two ``track`` processes in the default calibrated mode on one run: one measures, the other waits and
reuses its rows (before, each measured every checkpoint)."""

from __future__ import annotations

from train_helpers import run_side_by_side

from sparsinglaw.store.database import ResultsStore
from sparsinglaw.track.tracker import TrackSettings, track

# Imports everything, then waits for the go file so both processes start at the same moment.
WORKER = """
import json, os, sys, time
import torch
torch.set_num_threads(1)
from sparsinglaw.track.tracker import TrackSettings, track
run_dir, go = sys.argv[1], sys.argv[2]
open(go + "." + str(os.getpid()), "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
print(json.dumps(track(run_dir, TrackSettings(max_tokens=256, batch_size=4))))
"""


def test_two_calibrated_trackers_measure_the_run_once(run_copy, tmp_path):
    counts = sorted(run_side_by_side(WORKER, run_copy, tmp_path), key=lambda c: c["measured"])
    assert [c["measured"] for c in counts] == [0, 3], counts  # 3 checkpoints, measured by one process
    assert counts[0]["elsewhere"] == 3 and counts[0]["cett"] == counts[1]["cett"], counts
    store = ResultsStore(run_copy)
    rows = store.measurements(metric="cett-calibrated")
    assert [r["checkpoint"] for r in rows] == ["checkpoint-4", "checkpoint-8", "checkpoint-12"]
    assert store.claims() == []  # the run-wide claim released


def test_a_later_tracker_still_measures_again(run_copy):
    """Only a process that waited reuses rows: a track started after another finished re-measures (the
    calibration moves as checkpoints are added), as before."""
    settings = TrackSettings(max_tokens=256, batch_size=4)
    first, second = track(run_copy, settings), track(run_copy, settings)
    assert first["measured"] == second["measured"] == 3 and first["cett"] == second["cett"]

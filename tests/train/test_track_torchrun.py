"""``sparsinglaw track`` under torchrun: 2 gloo processes share the calibrated CETT's passes and store the
same rows as one process; the modes that cannot be shared stop with one line."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from train_helpers import PYTHON, REPO, subprocess_env

from sparsinglaw.store.database import ResultsStore
from sparsinglaw.track.tracker import TrackSettings, track

SETTINGS = ["--max-tokens", "256", "--batch-size", "2", "--calibrate-last", "2"]


def torchrun_track(run_dir, *extra):
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "sparsinglaw.cli.track", str(run_dir), *SETTINGS, *extra]
    return subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)


def test_two_processes_store_what_one_process_stores(run_copy, tmp_path):
    one_dir = tmp_path / "one"
    shutil.copytree(run_copy, one_dir)
    single = track(one_dir, TrackSettings(max_tokens=256, batch_size=2, calibrate_last=2))
    proc = torchrun_track(run_copy, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)["summary"]  # printed once, by the first process
    assert summary["cett"] == pytest.approx(single["cett"], rel=1e-5)
    rows = {r["checkpoint"]: r for r in ResultsStore(run_copy).measurements(metric="cett-calibrated")}
    ref = {r["checkpoint"]: r for r in ResultsStore(one_dir).measurements(metric="cett-calibrated")}
    assert rows.keys() == ref.keys() and len(rows) == 3  # one row per checkpoint: only one process wrote
    for name, row in ref.items():
        assert rows[name]["activation_ratio"] == pytest.approx(row["activation_ratio"], rel=1e-5, abs=1e-7)


def test_modes_that_are_not_sharded_stop_with_one_line(run_copy, monkeypatch, capsys):
    """Checked before any measurement (in-process here: only the process count matters, not a live group)."""
    from sparsinglaw import cli, distributed

    monkeypatch.setattr(distributed, "world", lambda: (0, 2))
    for extra in (["--mode", "pplp"], ["--input-sparsity"]):
        assert cli.main(["track", str(run_copy), *SETTINGS, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("error: track under torchrun runs --mode cett-calibrated without --input-sparsity") == 2
    assert not ResultsStore(run_copy).measurements(metric="pplp")

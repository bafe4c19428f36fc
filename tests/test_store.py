"""Results store: concurrent writers lose nothing, keys are unique, export to CSV/JSON, points for fitting."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sparsinglaw.errors import DataError
from sparsinglaw.store.database import FILENAME, ResultsStore

REPO = Path(__file__).resolve().parents[1]

WRITER = """
import os, sys, time
from sparsinglaw.store.database import ResultsStore
store, name, n = ResultsStore(sys.argv[1]), sys.argv[2], int(sys.argv[3])
open(sys.argv[4], "w").close()  # this writer is ready; start together with the other one
while not os.path.exists(sys.argv[5]):
    time.sleep(0.01)
for i in range(n):
    store.add_checkpoint(name, f"checkpoint-{i}", step=i, tokens=1000 * i)
    store.record(name, f"checkpoint-{i}", 1000 * i, "pplp", setting={"p": 1.0}, value=0.5, activation_ratio=0.5,
                 result={"metric": "pplp", "activation_ratio": 0.5, "provenance": {"writer": name}})
"""


OPENER = """
import sys, time
from sparsinglaw.store.database import ResultsStore
start, dirs = float(sys.argv[1]), sys.argv[2:]
for k, path in enumerate(dirs):  # open each new store at the same moment as the other processes
    while time.time() < start + 0.3 * k:
        pass
    ResultsStore(path)
"""


def test_processes_creating_one_store_at_once_all_open_it(tmp_path):
    # Switching a new file to WAL takes a lock SQLite does not wait for: before the retry, 10 of 160 such
    # opens failed with "database is locked" (one CI run lost a writer to it).
    import time

    dirs = [str(tmp_path / f"store{k}") for k in range(8)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(start), *dirs], env=env, stderr=subprocess.PIPE)
             for _ in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-2000:]
    assert all(ResultsStore(d)._read("PRAGMA journal_mode")[0][0] == "wal" for d in dirs)


def filled(tmp_path) -> ResultsStore:
    store = ResultsStore(tmp_path)
    store.add_run("relu-run", {"model": {"activation": "relu"}}, fingerprint="abc")
    for i, ratio in enumerate([0.30, 0.20, 0.15, 0.12]):
        tokens = (i + 1) * 1_000_000
        store.add_checkpoint("relu-run", f"checkpoint-{i + 1}", step=i + 1, tokens=tokens)
        store.record("relu-run", f"checkpoint-{i + 1}", tokens, "pplp", setting={"p": 1.0}, value=ratio,
                     activation_ratio=ratio, result={"activation_ratio": ratio})
        store.record("relu-run", f"checkpoint-{i + 1}", tokens, "eval_loss", value=5.0 - i)
    return store


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    n = 150
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"writer{i}", str(n), str(ready[i]), str(ready[1 - i])],
                              env=env, stderr=subprocess.PIPE) for i in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-2000:]
    store = ResultsStore(tmp_path)
    rows = store.measurements(with_result=True)
    assert len(rows) == 2 * n
    assert {r["run_id"] for r in rows} == {"writer0", "writer1"}
    assert len(store.checkpoints()) == 2 * n
    assert all(r["provenance"] == {"writer": r["run_id"]} for r in rows)
    mode = store._read("PRAGMA journal_mode")[0][0]
    assert mode == "wal"


def test_store_file_lives_in_the_run_dir(tmp_path):
    assert ResultsStore(tmp_path / "run").path == tmp_path / "run" / FILENAME
    assert ResultsStore(tmp_path / "x.sqlite").path == tmp_path / "x.sqlite"


def test_rerecording_replaces_and_has_sees_it(tmp_path):
    store = filled(tmp_path)
    assert store.has("relu-run", "checkpoint-2", "pplp", {"p": 1.0})
    assert not store.has("relu-run", "checkpoint-2", "pplp", {"p": 5.0})
    store.record("relu-run", "checkpoint-2", 2_000_000, "pplp", setting={"p": 1.0}, activation_ratio=0.25)
    rows = store.measurements("relu-run", "pplp")
    assert len(rows) == 4 and rows[1]["activation_ratio"] == 0.25


def test_rows_are_stamped(tmp_path):
    store = filled(tmp_path)
    (run,) = store.runs()
    assert run["config"]["model"]["activation"] == "relu" and run["fingerprint"] == "abc"
    assert {"versions", "git_hash", "date"} <= set(run["provenance"])
    row = store.measurements("relu-run", "eval_loss", with_result=True)[0]
    assert "versions" in row["provenance"]


def test_points_for_the_law_fitter(tmp_path):
    store = filled(tmp_path)
    assert store.points("relu-run", "pplp") == [(1_000_000, 0.30), (2_000_000, 0.20), (3_000_000, 0.15),
                                                 (4_000_000, 0.12)]
    store.record("relu-run", "checkpoint-1", 1_000_000, "pplp", setting={"p": 5.0}, activation_ratio=0.2)
    with pytest.raises(DataError, match="2 settings"):
        store.points("relu-run", "pplp")
    assert len(store.points("relu-run", "pplp", {"p": 5.0})) == 1


def test_export_csv_and_json(tmp_path):
    store = filled(tmp_path)
    rows = list(csv.DictReader(store.export_csv(tmp_path / "out.csv").open()))
    assert len(rows) == 8 and {r["metric"] for r in rows} == {"pplp", "eval_loss"}
    assert float(next(r for r in rows if r["metric"] == "pplp")["activation_ratio"]) == 0.30
    data = json.loads(store.export_json(tmp_path / "out.json").read_text())
    assert len(data["records"]) == 8 and data["runs"][0]["run_id"] == "relu-run"
    assert data["records"][0]["result"] is not None or data["records"][0]["metric"] == "eval_loss"


def test_fit_reads_exports_and_the_database(tmp_path):
    from sparsinglaw.laws import read_curves

    store = filled(tmp_path)
    (curve,) = read_curves(store.export_json(tmp_path / "points.json", points_only=True, metric="pplp"))
    assert list(curve.tokens) == [1e6, 2e6, 3e6, 4e6] and curve.activation == "relu"
    (curve,) = read_curves(store.path)
    assert list(curve.ratio) == [0.30, 0.20, 0.15, 0.12] and curve.activation == "relu"


class _InterruptedAt(sqlite3.Connection):
    """A connection that raises KeyboardInterrupt just after (or instead of) running one statement."""

    statement, after = "COMMIT", True

    def execute(self, sql, *args):
        if sql != self.statement:
            return super().execute(sql, *args)
        if self.after:
            super().execute(sql, *args)
        raise KeyboardInterrupt


@pytest.mark.parametrize("after", [True, False])
def test_an_interrupt_at_commit_stays_an_interrupt(tmp_path, monkeypatch, after):
    # A study stopped with SIGINT while a trainer recorded a checkpoint once exited 1 with "cannot rollback -
    # no transaction is active": the interrupt had landed after COMMIT, and ROLLBACK replaced it.
    store = ResultsStore(tmp_path)
    store.add_run("run", config={}, fingerprint="f")
    connect = store._connect

    def interrupted():
        db = sqlite3.connect(store.path, timeout=store.timeout, isolation_level=None, factory=_InterruptedAt)
        db.after = after
        return db

    monkeypatch.setattr(store, "_connect", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.add_checkpoint("run", "checkpoint-1", step=1, tokens=1000)
    monkeypatch.setattr(store, "_connect", connect)
    recorded = [row["checkpoint"] for row in store._read("SELECT checkpoint FROM checkpoints")]
    assert recorded == (["checkpoint-1"] if after else [])

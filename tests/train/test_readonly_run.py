"""A finished run in a read-only place (an archive, a shared result) stays readable: ``fit`` reads its store,
``report`` renders it elsewhere; what must write (``report --analyze``, ``track``) says so in one line, and
the advice in that line works.

Read-only for real: as root (who passes every permission check) the run directory is bind-mounted read-only
in a private mount namespace (``unshare --mount``); as another user it is ``chmod -R a-w``. A forced test
covers the read-only open itself where neither is possible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from train_helpers import PYTHON, REPO, subprocess_env

from sparsinglaw.errors import DataError
from sparsinglaw.laws.io import store_curves
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.track.tracker import TrackSettings, track

SETTINGS = TrackSettings(mode="pplp", max_tokens=256, batch_size=4)


def _can_mount_read_only() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", "mount --bind / /mnt 2>/dev/null || "
                            "mount --bind /tmp /tmp"], capture_output=True)
    return probe.returncode == 0


def _cli_read_only(directory, *argv) -> subprocess.CompletedProcess:
    """``sparsinglaw ARGV`` with ``directory`` read-only for the command."""
    command = [PYTHON, "-m", "sparsinglaw", *map(str, argv)]
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(directory)], check=True)
        try:
            return subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True)
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(directory)], check=True)
    if not _can_mount_read_only():
        pytest.skip("running as root without mount namespaces: no way to make a directory read-only here")
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, str(directory), *command], cwd=REPO,
                          env=subprocess_env(), capture_output=True, text=True)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def tracked_run(run_copy):
    track(run_copy, SETTINGS)
    return run_copy


def test_an_archived_store_is_fitted_as_the_writable_one_is(tmp_path):
    archive = tmp_path / "archive"
    store = ResultsStore(archive)
    for i in range(1, 9):  # a falling ReLU-like curve, enough points for every law
        store.record("run", f"checkpoint-{i}", 1000 * i, "pplp", setting={"p": 1.0}, value=None,
                     activation_ratio=0.1 + 0.3 / i ** 0.7)
    del store
    argv = ["fit", archive, "--law", "relu", "--interval", "none", "--json"]
    writable = subprocess.run([PYTHON, "-m", "sparsinglaw", *map(str, argv)], cwd=REPO, env=subprocess_env(),
                              capture_output=True, text=True)
    fitted = _cli_read_only(archive, *argv)
    assert fitted.returncode == 0 and "Traceback" not in fitted.stderr, fitted.stderr[-2000:]
    assert fitted.stdout == writable.stdout and '"relu"' in fitted.stdout


def test_an_archived_run_says_what_must_write_and_the_advice_works(tracked_run, tmp_path):
    before = sorted(p.name for p in tracked_run.iterdir())
    analyze = _one_error_line(_cli_read_only(tracked_run, "report", tracked_run, "--analyze"))
    assert "cannot be written" in analyze and "cp -r" in analyze
    tracking = _one_error_line(_cli_read_only(tracked_run, "track", tracked_run))
    assert "is read-only" in tracking and "cp -r" in tracking
    assert sorted(p.name for p in tracked_run.iterdir()) == before  # nothing written, no WAL side files left
    # The advice: a copy is analysed and reported, and tracked.
    copy = tmp_path / "copy"
    shutil.copytree(tracked_run, copy)
    for argv in (["report", copy, "--analyze"], ["track", copy, "--mode", "pplp", "--max-tokens", "256"]):
        done = subprocess.run([PYTHON, "-m", "sparsinglaw", *map(str, argv)], cwd=REPO, env=subprocess_env(),
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (copy / "report" / "index.html").is_file()
    # The analysed copy archived read-only: its report is rendered elsewhere, as the refusal advises.
    shutil.rmtree(copy / "report")
    refused = _one_error_line(_cli_read_only(copy, "report", copy))
    assert "write the report elsewhere with --output DIR" in refused
    elsewhere = tmp_path / "elsewhere"
    rendered = _cli_read_only(copy, "report", copy, "--output", elsewhere)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert (elsewhere / "index.html").is_file() and not (copy / "report").exists()


def test_the_read_only_open_reads_everything_and_refuses_writes(tracked_run, monkeypatch):
    """The read-only open itself, forced (``os.access`` answering "not writable" as it does for an archive)."""
    rows = ResultsStore(tracked_run).measurements(with_result=True)
    data = (tracked_run / "results.sqlite").read_bytes()
    monkeypatch.setattr("sparsinglaw.store.database._writable", lambda folder: False)
    store = ResultsStore(tracked_run)
    assert store.read_only
    assert store.measurements(with_result=True) == rows and store.checkpoints() and store.runs()
    assert sum(len(c.tokens) for c in store_curves(tracked_run)) == sum(r["activation_ratio"] is not None
                                                                        for r in rows) > 0
    with pytest.raises(DataError, match="is read-only: .*cp -r"):
        store.record("run", "checkpoint-1", 1, "pplp", value=0.1)
    assert (tracked_run / "results.sqlite").read_bytes() == data
    assert not (tracked_run / "results.sqlite-wal").exists()


if sys.platform != "linux":  # pragma: no cover - the bind mount and /proc paths are Linux's
    pytestmark = pytest.mark.skip("Linux only")

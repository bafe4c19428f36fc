"""Calibrated tracking done once when several ``track`` processes run on one run.

One CETT is calibrated on the last checkpoints and applied to all, so the calibrated rows belong together:
a process claims the whole calibrated pass (checkpoint ``CALIBRATED_PASS``); another waits for the claim's
release and reuses those rows when they cover every complete checkpoint, else makes the pass itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sparsinglaw.store.database import ResultsStore, setting_key

log = logging.getLogger("sparsinglaw")

CALIBRATED_PASS = "*calibrated-pass*"  # the checkpoint column of the run-wide claim
LOCK_METRIC = "cett-calibrated"
POLL_S = 0.5


@contextmanager
def calibrated_pass(store: ResultsStore, run_id: str, setting: dict, poll: float = POLL_S) -> Iterator[float | None]:
    """Hold the run's calibrated-pass claim; yields when the pass another process held began (epoch seconds)
    if this one had to wait for it, else None."""
    key = (run_id, CALIBRATED_PASS, LOCK_METRIC, setting)
    began = None
    while not store.claim(*key):
        if began is None:
            log.info("another track process is measuring %s in calibrated mode; waiting to reuse its rows", run_id)
        began = min([began or time.time()] + _claim_times(store, key))
        time.sleep(poll)
    try:
        yield began
    finally:
        store.release(*key)


def _claim_times(store: ResultsStore, key: tuple) -> list[float]:
    run_id, checkpoint, metric, setting = key
    return [float(c["claimed"]) for c in store.claims() if (c["run_id"], c["checkpoint"], c["metric"], c["setting"])
            == (run_id, checkpoint, metric, setting_key(setting))]


def fresh_rows(store: ResultsStore, infos: list[dict], metric: str, setting: dict, since: float) -> list[dict] | None:
    """The ``metric`` rows of every checkpoint in ``infos`` if all were written at or after ``since`` (the
    pass this process waited for), else None."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))  # the store's created column, to the second
    rows = {r["checkpoint"]: r for r in store.measurements(infos[0]["run_id"], metric, setting, with_result=True)}
    names = [Path(i["path"]).name for i in infos]
    if any(name not in rows or rows[name]["created"] < stamp for name in names):
        return None
    return [rows[name] for name in names]


def reused_summary(store: ResultsStore, infos: list[dict], settings, since: float) -> dict | None:
    """The summary of the calibrated pass another process just made, or None when it does not cover this one."""
    rows = fresh_rows(store, infos, "cett-calibrated", settings.setting(), since)
    if rows is None:
        return None
    summary = {"measured": 0, "elsewhere": len(rows), "cett": (rows[-1]["result"].get("setting") or {}).get("cett"),
               "calibration": rows[-1]["result"].get("solution")}
    if settings.input_sparsity:
        inputs = fresh_rows(store, infos, settings.input_metrics[0], settings.setting(), since)
        if inputs is None:
            return None
        summary["inputs"] = {"measured": 0, "elsewhere": len(inputs)}
    return summary


def track_calibrated_once(run_dir: Path, settings, track_calibrated: Callable, complete: Callable) -> dict:
    """``track_calibrated(run_dir, settings)`` under the run's calibrated-pass claim, or the rows of the pass
    another process made while this one waited."""
    infos = complete(run_dir)
    if not infos:
        return track_calibrated(run_dir, settings)
    store = ResultsStore(run_dir)
    with calibrated_pass(store, infos[0]["run_id"], settings.setting()) as began:
        if began is not None:
            reused = reused_summary(store, complete(run_dir), settings, began)
            if reused is not None:
                return reused
        return track_calibrated(run_dir, settings)

"""Cells side by side: ``StudyConfig.jobs`` cells at once, each trained and tracked in a process of its own
(tiny models use one CPU thread best). Each child runs ``python -m sparsinglaw.study.cell_process STUDY_TOML
CELL``, logs to ``cells/CELL.log`` and leaves its stage times in ``cells/CELL.timings.json``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sparsinglaw.errors import SparsingLawError
from sparsinglaw.store.layout import STUDY_FILE

POLL_SECONDS = 0.5


def cell_log(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / "cells" / f"{name}.log"


def cell_timings(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / "cells" / f"{name}.timings.json"


def _start(study_file: Path, out_dir: Path, name: str, force: bool = False) -> subprocess.Popen:
    path = cell_log(out_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "sparsinglaw.study.cell_process", str(study_file), name, *(["--force"] * force)]
    with open(path, "ab") as handle:  # the child keeps its own descriptor; appended to on resume
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_parallel(cfg, pending: list, timer, echo=print, force: bool = False) -> None:
    """Run ``pending`` cells (index, Cell) at most ``cfg.jobs`` at a time; raise when one fails, after
    stopping the others (each resumes from its last checkpoint on the next run). ``force``: a cell whose
    run directory was trained under another config continues under this one (``train --force``)."""
    out_dir, study_file = Path(cfg.out_dir), Path(cfg.out_dir) / STUDY_FILE
    queue, running, total = list(pending), {}, len(cfg.cells())
    started = time.perf_counter()
    try:
        while queue or running:
            while queue and len(running) < cfg.jobs:
                i, cell = queue.pop(0)
                echo(f"[{i}/{total}] {cell.name}: training and tracking in its own process "
                     f"(log: {cell_log(out_dir, cell.name)})")
                running[cell.name] = (_start(study_file, out_dir, cell.name, force), time.perf_counter())
            time.sleep(POLL_SECONDS)
            for name, (process, since) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                if process.returncode != 0:
                    raise SparsingLawError(f"cell {name} failed (exit {process.returncode}); its log "
                                           f"{cell_log(out_dir, name)} ends:\n{_tail(cell_log(out_dir, name))}")
                echo(f"{name}: done in {time.perf_counter() - since:.0f} s")
                _add_child_timings(timer, out_dir, name)
    finally:
        for process, _ in running.values():
            process.terminate()
        for process, _ in running.values():
            process.wait()
    timer.add("cells in parallel (wall)", time.perf_counter() - started)


def _add_child_timings(timer, out_dir: Path, name: str) -> None:
    """Each child's train/track seconds, summed into the study's stages (they overlap in wall time)."""
    try:
        seconds = json.loads(cell_timings(out_dir, name).read_text(encoding="utf-8"))["stages"]
    except (OSError, json.JSONDecodeError, KeyError):
        return
    for stage, value in seconds.items():
        timer.add(stage, float(value))

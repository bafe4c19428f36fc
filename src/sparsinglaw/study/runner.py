"""Run a study: train and track every cell, skipping finished ones and resuming interrupted ones.

``OUT_DIR``'s files, and which stage writes each: docs/architecture.md ("A study"). A rerun must match
``study.toml`` (or pass --force). A cell whose ``study_cell.json`` matches its fingerprint is skipped;
others are trained (resuming from the last complete checkpoint) and tracked, one after another, under
torchrun, or ``jobs`` at a time (``study.parallel``)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from sparsinglaw.data import builtin_documents
from sparsinglaw.data.tokenizer import prepare_tokenizer
from sparsinglaw.errors import ConfigError, SparsingLawError
from sparsinglaw.fileio import atomic_write_json, atomic_write_text
from sparsinglaw.progress import progress_bar
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.store.layout import BUILTIN_JSONL, CELL_DONE, EVENTS, FITS, PRETRAINED, STUDY_FILE, TIMINGS
from sparsinglaw.store.runs import complete_checkpoints, last_complete_checkpoint
from sparsinglaw.study.config import Cell, StudyConfig, load_study
from sparsinglaw.study.parallel import run_parallel
from sparsinglaw.study.stages import write_analysis
from sparsinglaw.track.tracker import complete, track_calibrated, track_pplp
from sparsinglaw.train import train
from sparsinglaw.train.data import split_documents

log = logging.getLogger("sparsinglaw")


class Timer:
    """Wall seconds per stage, accumulated over cells (``timings.json``: what the benchmark reports)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def stage(self, name: str):
        @contextlib.contextmanager
        def timed():
            start = time.perf_counter()
            try:
                yield
            finally:
                self.add(name, time.perf_counter() - start)

        return timed()

    def to_dict(self) -> dict:
        return {"wall": time.perf_counter() - self.started, "stages": dict(self.seconds)}


def log_event(out_dir: Path, kind: str, cell: str, **info) -> None:
    """Append one event (append-only, one short write: survives kills between events)."""
    line = json.dumps({"time": time.time(), "event": kind, "cell": cell, **info})
    with open(Path(out_dir) / EVENTS, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_events(out_dir: str | Path) -> list[dict]:
    path = Path(out_dir) / EVENTS
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill
            continue
    return events


def is_done(cell: Cell) -> bool:
    try:
        info = json.loads((cell.run_dir / CELL_DONE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    cfg = cell.train_config()
    # Cells finished before fingerprints used absolute paths carry the paths as written.
    return info.get("fingerprint") in (cfg.fingerprint(), cfg.fingerprint(absolute_paths=False))


def guard_study_dir(cfg: StudyConfig, force: bool = False) -> None:
    """Write ``study.toml``; a different config in an existing study directory needs ``force``."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / STUDY_FILE
    if path.is_file() and not force:
        old = load_study(path).to_dict()
        new = cfg.to_dict()
        for d in (old, new):  # where and how fast it runs is not what it computes
            for key in ("out_dir", "threads", "jobs"):
                d.pop(key, None)
        if old != new:
            raise ConfigError(f"{out} holds a study with a different config ({path}); use another out_dir or --force")
    cfg.save(path)


def shared_corpus(cfg: StudyConfig) -> None:
    """Write the built-in corpus once as ``OUT_DIR/builtin-corpus.jsonl`` when the cells read it."""
    target = Path(cfg.out_dir) / BUILTIN_JSONL
    if Path(cfg.cells()[0].train_config().data.source) != target or target.is_file():
        return

    atomic_write_text(target, "".join(json.dumps({"text": d}) + "\n" for d in builtin_documents()))


def shared_tokenizer(cfg: StudyConfig) -> None:
    """Train the study's tokenizer once (``OUT_DIR/tokenizer``) unless ``base.tokenizer.path`` names one."""
    cells = cfg.cells()
    train_cfg = cells[0].train_config()
    target = Path(cfg.out_dir) / "tokenizer"
    if Path(train_cfg.tokenizer.path) != target or (target / "tokenizer_config.json").is_file():
        return

    train_docs, _ = split_documents(train_cfg.data)
    prepare_tokenizer(replace(train_cfg.tokenizer, path=None), Path(cfg.out_dir), train_docs)


def train_cell(cell: Cell, cfg: StudyConfig, force: bool = False) -> None:
    """Train (or resume) the cell; ``force`` (the study's ``--force``) continues a run directory trained under
    an edited config, as ``train --force`` does."""
    train_cfg = cell.train_config()
    last = last_complete_checkpoint(cell.run_dir) if cell.run_dir.is_dir() else None
    log_event(Path(cfg.out_dir), "train", cell.name, resume_from=last.name if last else None)
    if cfg.launcher == "torchrun":
        _torchrun(cell, cfg, force)
        return

    train(train_cfg, force=force)


def _torchrun(cell: Cell, cfg: StudyConfig, force: bool = False) -> None:
    path = cell.run_dir.parent / f"{cell.name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    cell.train_config().save(path)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.nproc}",
               "-m", "sparsinglaw.cli.train", str(path), *(["--force"] * force)]
    log.info("running %s", " ".join(command))
    code = subprocess.call(command)
    if code != 0:
        raise SparsingLawError(f"cell {cell.name}: torchrun exited with {code} (see its output above)")


def track_cell(cell: Cell, cfg: StudyConfig) -> dict:
    """Measure the cell's checkpoints in the study's tracking mode (``TrackSettings``): the calibrated CETT
    (re-measures every checkpoint: adding one moves the calibration) or PPL-p% at each checkpoint not
    measured yet, with a progress bar over checkpoints."""
    settings = cfg.track
    if settings.mode == "cett-calibrated":
        return track_calibrated(cell.run_dir, settings)
    show = bool(cfg.base.get("progress", True))
    with progress_bar(len(complete(cell.run_dir)), "track", "ckpt", enabled=show) as bar:
        return track_pplp(cell.run_dir, settings, progress=lambda name, result: bar.update(1))


def _last_logged_loss(checkpoint: Path, step: int) -> float | None:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    losses = [h["loss"] for h in state.get("log_history", []) if "loss" in h and h.get("step", 0) <= step]
    return float(losses[-1]) if losses else None


def backfill_losses(cell: Cell) -> int:
    """Record losses of complete checkpoints that the store lacks (a stop between a checkpoint's marker and
    its store rows; the first checkpoint after a resume, logged before the restart); returns rows added."""
    store, added = ResultsStore(cell.run_dir), 0
    for info in complete_checkpoints(cell.run_dir):
        path = Path(info["path"])
        store.add_checkpoint(info["run_id"], path.name, step=info["step"], tokens=info["tokens_seen"], path=str(path))
        values = {"train_loss": info.get("train_loss"), "eval_loss": info.get("eval_loss")}
        if values["train_loss"] is None:
            values["train_loss"] = _last_logged_loss(path, info["step"])
        for metric, value in values.items():
            if value is not None and not store.has(info["run_id"], path.name, metric):
                store.record(info["run_id"], path.name, info["tokens_seen"], metric, value=value)
                added += 1
    return added


def run_cell(cell: Cell, cfg: StudyConfig, timer: Timer | None = None, force: bool = False) -> None:
    timer = timer or Timer()
    with timer.stage("train"):
        train_cell(cell, cfg, force)
        backfill_losses(cell)
    with timer.stage("track"):
        summary = track_cell(cell, cfg)
    failed = (summary.get("failed") or 0) + ((summary.get("inputs") or {}).get("failed") or 0)
    if failed:  # output or input sparsity: the cell is not finished; a rerun measures what is missing
        raise SparsingLawError(f"cell {cell.name}: {failed} checkpoint measurement(s) failed (see the log above)")
    atomic_write_json(cell.run_dir / CELL_DONE, {"cell": cell.name, "fingerprint": cell.train_config().fingerprint(),
                                                 "describe": cell.describe()})
    log_event(Path(cfg.out_dir), "done", cell.name)


def run_cells(cfg: StudyConfig, *, force: bool = False, echo=print, timer: Timer | None = None) -> dict:
    """Train and track every unfinished cell; returns counts of run and skipped cells."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    guard_study_dir(cfg, force)
    shared_corpus(cfg)
    shared_tokenizer(cfg)
    cells = cfg.cells()
    counts = {"cells": len(cells), "run": 0, "skipped": 0}
    pending = []
    for i, cell in enumerate(cells, 1):
        if is_done(cell):
            counts["skipped"] += 1
            echo(f"[{i}/{len(cells)}] {cell.name}: finished earlier, skipped")
        else:
            pending.append((i, cell))
    counts["run"] = len(pending)
    if cfg.jobs > 1 and len(pending) > 1:  # independent cells side by side, one process each
        run_parallel(cfg, pending, timer or Timer(), echo, force=force)
        return counts
    for i, cell in pending:
        echo(f"[{i}/{len(cells)}] {cell.name}: training and tracking")
        run_cell(cell, cfg, timer, force)
    return counts


def run_study(cfg: StudyConfig, *, force: bool = False, report: bool = True, echo=print) -> dict:
    """The whole study: cells, then the fitting stage, then the report. Returns a summary."""
    from transformers.utils import logging as hf_logging

    cfg.require_corpus()

    hf_logging.disable_progress_bar()  # no "Loading weights" / "Writing model shards" bar per checkpoint
    try:
        return _run_study(cfg, force, report, echo)
    finally:
        hf_logging.enable_progress_bar()


def _pretrained_key(cfg: StudyConfig) -> dict:
    spec = cfg.fit
    return {"model": spec.pretrained, "hidden_act": spec.pretrained_act, "tokens": spec.pareto_tokens,
            "points": spec.pareto_points, "p": cfg.track.p}


def pretrained_done(cfg: StudyConfig) -> bool:
    """Whether ``pretrained.json`` holds the comparison for the study's current settings."""
    try:
        old = json.loads((Path(cfg.out_dir) / PRETRAINED).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return old.get("key") == _pretrained_key(cfg)


def start_pretrained(cfg: StudyConfig, echo=print) -> subprocess.Popen | None:
    """Start the metric comparison on ``fit.pretrained`` in a process of its own (one torch thread), so it
    runs on the second core while the cells train; None when not configured or already done."""
    if not cfg.fit.pretrained or pretrained_done(cfg):
        return None
    echo(f"metric comparison on {Path(cfg.fit.pretrained).name} ({cfg.fit.pareto_tokens} tokens), in parallel")
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "sparsinglaw.study.pretrained", str(Path(cfg.out_dir) / PRETRAINED),
               json.dumps(_pretrained_key(cfg)), "1"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


def finish_pretrained(process: subprocess.Popen | None, cfg: StudyConfig) -> None:
    """Wait for the comparison; its failure is logged (the report says the comparison is missing)."""
    if process is None:
        return
    if process.wait() != 0 or not pretrained_done(cfg):
        log.warning("the metric comparison on %s failed (exit %s); the report omits it", cfg.fit.pretrained,
                    process.returncode)


def _run_study(cfg: StudyConfig, force: bool, report: bool, echo) -> dict:
    timer = Timer()
    guard_study_dir(cfg, force)
    process = start_pretrained(cfg, echo)
    try:
        counts = run_cells(cfg, force=force, echo=echo, timer=timer)
    except BaseException:
        if process is not None:
            process.terminate()
        raise
    with timer.stage("pretrained (waited for)"):
        finish_pretrained(process, cfg)
    echo("fitting the laws, comparing with the paper, probing the last checkpoints")
    analysis = write_analysis(cfg.out_dir, with_pareto=not pretrained_done(cfg), timer=timer)
    summary = {**counts, "fits": str(Path(cfg.out_dir) / FITS), "n_fits": len(analysis.fits)}
    atomic_write_json(Path(cfg.out_dir) / TIMINGS, timer.to_dict())
    if report:
        from sparsinglaw.report.html import write_report  # here: matplotlib, only when a report is asked for

        echo("writing the report")
        with timer.stage("report"):
            summary["report"] = str(write_report(cfg.out_dir))
    atomic_write_json(Path(cfg.out_dir) / TIMINGS, timer.to_dict())
    summary["timings"] = timer.to_dict()
    return summary

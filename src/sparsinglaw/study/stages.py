"""The analysis stages of a study or tracked training run: everything the report shows, written as files.

``write_analysis(PATH)`` collects what the runs measured, fits the laws, checks the trends against the paper
(again for input sparsity where tracked), probes the last checkpoints and writes ``fits.json``,
``comparison.json``, ``paper.json``, ``setup.json`` and ``probes.json`` into PATH."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.store.artifacts import ComparisonDocument, PaperDocument, ProbesDocument, SetupDocument
from sparsinglaw.store.database import FILENAME, ResultsStore
from sparsinglaw.store.layout import COMPARISON, FITS, PAPER, PRETRAINED, PROBES, SETUP
from sparsinglaw.study.collect import is_study, load_study_dir
from sparsinglaw.study.compare import compare_with_paper
from sparsinglaw.study.fit import analyze_dir
from sparsinglaw.study.paper_ref import paper_document
from sparsinglaw.study.probe import probe_study
from sparsinglaw.track.tracker import track_inputs


def setup_document(analysis, info: dict) -> SetupDocument:
    """``setup.json``: what the report states about how the study was run (its config's tracking settings
    and training text; a bare run has none)."""
    cfg = info.get("config")
    first = analysis.cells[0] if analysis.cells else None
    p = float((first.setting if first else {}).get("p", cfg.track.p if cfg is not None else 1.0))
    doc = SetupDocument(info["name"], info["kind"], first.metric if first else None, p)
    if cfg is not None:
        track = cfg.track
        doc.track = {"mode": track.mode, "calibrate_last": track.calibrate_last, "p": track.p,
                     "max_tokens": track.max_tokens}
        if track.input_sparsity:  # only then: setup files of studies without it stay as they were
            doc.track["input_sparsity"] = True
        doc.data_source = (cfg.base.get("data") or {}).get("source", "builtin")
    return doc


def _timed(timer, stage: str):
    return timer.stage(stage) if timer is not None else contextlib.nullcontext()


def write_documents(path: str | Path, analysis, info: dict) -> SetupDocument:
    """``fits.json``, ``comparison.json``, ``paper.json`` and ``setup.json`` of ``analysis`` into ``path``
    (all but the probes), each through its dataclass (``sparsinglaw.store.artifacts``); returns the setup."""
    path = Path(path)
    atomic_write_json(path / FITS, analysis.document().to_dict())
    atomic_write_json(path / COMPARISON, ComparisonDocument.from_dict(compare_with_paper(analysis)).to_dict())
    atomic_write_json(path / PAPER, PaperDocument.from_dict(paper_document()).to_dict())
    setup = setup_document(analysis, info)
    atomic_write_json(path / SETUP, setup.to_dict())
    return setup


def cells_missing_inputs(path: Path) -> list:
    """Cells of a study asking for input sparsity (``track.input_sparsity``) whose store has none: cells
    finished before it was set are skipped by the runner (their training config is unchanged)."""
    if not is_study(path):
        return []
    cfg = load_study_dir(path)
    if not cfg.track.input_sparsity:
        return []
    metric = cfg.track.input_metrics[0]
    return [(cell, cfg.track) for cell in cfg.cells() if (cell.run_dir / FILENAME).is_file()
            and not ResultsStore(cell.run_dir).measurements(metric=metric, setting=cfg.track.setting())]


def track_missing_inputs(path: Path, timer=None) -> int:
    """Track input sparsity on the cells that lack it (see ``cells_missing_inputs``); returns how many."""
    missing = cells_missing_inputs(path)
    if missing:
        with _timed(timer, "track inputs"):
            for cell, settings in missing:
                logging.getLogger("sparsinglaw").info("%s: tracking input sparsity (not tracked yet)", cell.name)
                track_inputs(cell.run_dir, settings)
    return len(missing)


def write_analysis(path: str | Path, *, with_pareto: bool | None = None, timer=None):
    """Fit, compare and probe the study or run at ``path``; write the analysis files there and return the
    ``Analysis``. ``with_pareto``: also measure the metric comparison on a cell (default: when the
    directory has no ``pretrained.json``). ``timer``: a ``runner.Timer`` to charge the stages to."""
    path = Path(path)
    track_missing_inputs(path, timer)
    with _timed(timer, "fit"):
        analysis, info = analyze_dir(path)
        setup = write_documents(path, analysis, info)
    if with_pareto is None:
        with_pareto = not (path / PRETRAINED).is_file()
    with _timed(timer, "probe"):
        probes = ProbesDocument.from_dict(probe_study(analysis, setup.p, with_pareto=with_pareto))
        atomic_write_json(path / PROBES, probes.to_dict())
    return analysis

"""What the report renders, read from the analysis stages' files (``sparsinglaw.store.layout``) through their
dataclasses (``artifacts``); nothing is measured or fitted here. A missing or outdated file is a
``DataError`` naming the command that writes it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsinglaw.errors import DataError
from sparsinglaw.store.artifacts import (
    CellRecord,
    ComparisonDocument,
    FitRecord,
    FitsDocument,
    IntervalRecord,
    PaperDocument,
    ProbesDocument,
    SetupDocument,
)
from sparsinglaw.store.layout import (
    ANALYSIS_FILES,
    ANALYSIS_SCHEMA,
    COMPARISON,
    FITS,
    PAPER,
    PRETRAINED,
    PROBES,
    SETUP,
    TIMINGS,
)

IntervalView = IntervalRecord  # the report reads intervals as the study wrote them


@dataclass(frozen=True)
class LimitView:
    value: float | None  # the estimate, identified or not
    interval: IntervalView | None
    identified: bool
    text: str  # the fitting stage's description of it


@dataclass
class FitView:
    """One fitted law as ``fits.json`` holds it, with its curve and band sampled for drawing."""

    law: str
    params: dict[str, float | None]
    intervals: dict[str, IntervalView]
    mae: float | None
    n_points: int
    n_skipped: int
    limit: LimitView | None
    curve: dict[str, Any]  # tokens, ratio, low, high (low/high None without bootstrap samples)
    misfit: str | None = None  # why the law does not follow its points: flagged, not drawn as the law

    @classmethod
    def from_record(cls, fit: FitRecord) -> FitView:
        lim = fit.limit
        limit = None if lim is None else LimitView(lim.estimate, lim.interval, lim.identified, lim.describe)
        return cls(fit.law, fit.params, fit.intervals, fit.mae, int(fit.numbers.get("n_points", 0)),
                   int(fit.numbers.get("n_skipped", 0)), limit, fit.curve, fit.misfit)


@dataclass
class CellView:
    """One model: its shape and every tracked measurement."""

    name: str
    activation: str
    hidden_size: int
    num_layers: int
    ratio: float
    n_params: float
    tokens_budget: int
    epochs: float | None
    metric: str
    points: list[tuple[int, float]]
    intervals: dict[int, tuple[float, float]]
    interval_level: float | None
    dead: list[tuple[int, float]]
    final_loss: float | None
    dead_intervals: dict[int, tuple[float, float]] = field(default_factory=dict)
    live: list[tuple[int, float]] = field(default_factory=list)  # activation ratio over live neurons
    live_intervals: dict[int, tuple[float, float]] = field(default_factory=dict)
    never_active: list[tuple[int, float]] = field(default_factory=list)

    @classmethod
    def from_record(cls, c: CellRecord) -> CellView:
        pairs = lambda rows: [(int(t), v) for t, v in rows]  # noqa: E731
        bounds = lambda rows: {int(t): (lo, hi) for t, lo, hi in rows}  # noqa: E731
        return cls(c.cell, c.activation, c.hidden_size, c.num_layers, c.ratio, c.n_params, c.tokens_budget,
                   c.epochs, c.metric, pairs(c.points), bounds(c.intervals), c.interval_level, pairs(c.dead),
                   c.final_loss, bounds(c.dead_intervals), pairs(c.live), bounds(c.live_intervals),
                   pairs(c.never_active))


def cell_views(doc: FitsDocument) -> list[CellView]:
    return [CellView.from_record(c) for c in doc.cells]


def fit_views(doc: FitsDocument) -> dict[str, FitView]:
    return {c.cell: FitView.from_record(c.fit) for c in doc.cells if c.fit is not None}


@dataclass
class StudyData:
    cells: list[CellView]
    fits: dict[str, FitView]
    failures: dict[str, str]
    widthdepth: list[dict]
    scale: list[dict]
    level: float
    comparison: ComparisonDocument
    paper: PaperDocument
    setup: SetupDocument
    probes: ProbesDocument
    pretrained: dict | None = None
    timings: dict | None = None
    fits_document: FitsDocument | None = field(default=None, repr=False)  # fits.json as read


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``; None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def missing_message(path: Path, missing: list[str]) -> str:
    return (f"{path}: no {', '.join(missing)} (the analysis files the report renders); run "
            f"`sparsinglaw report {path} --analyze` to fit the laws and probe the checkpoints, then report")


def load(path: str | Path) -> StudyData:
    """The analysis files of the study or run at ``path`` (DataError, one line, when any is missing)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a directory (give a study or training run directory)")
    docs = {name: read_json(path / name) for name in ANALYSIS_FILES}
    missing = [name for name, doc in docs.items() if doc is None]
    if not missing and docs[FITS].get("schema") != ANALYSIS_SCHEMA:
        missing = [f"current {FITS}"]
    if missing:
        raise DataError(missing_message(path, missing))
    fits = FitsDocument.from_dict(docs[FITS])
    return StudyData(
        cells=cell_views(fits), fits=fit_views(fits),
        failures={c.cell: c.fit_error for c in fits.cells if c.fit_error},
        widthdepth=fits.widthdepth, scale=fits.scale, level=fits.level,
        comparison=ComparisonDocument.from_dict(docs[COMPARISON]), paper=PaperDocument.from_dict(docs[PAPER]),
        setup=SetupDocument.from_dict(docs[SETUP]), probes=ProbesDocument.from_dict(docs[PROBES]),
        pretrained=read_json(path / PRETRAINED), timings=read_json(path / TIMINGS), fits_document=fits)

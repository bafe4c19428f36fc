"""What the report renders, read from the analysis stages' files (``sparsinglaw.layout``); nothing is
measured or fitted here.

``load(PATH)`` returns a ``StudyData``: the models with their measurements and fits (``fits.json``), the
verdicts (``comparison.json``), the paper's curves (``paper.json``), the setup (``setup.json``), the probes
(``probes.json``) and, where present, ``pretrained.json`` and ``timings.json``. A missing or outdated
analysis file is a ``DataError`` naming the command that writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsinglaw.errors import DataError
from sparsinglaw.layout import (
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


@dataclass(frozen=True)
class IntervalView:
    low: float | None
    high: float | None
    at_lower_bound: bool = False
    at_upper_bound: bool = False

    @classmethod
    def from_dict(cls, d: dict | None) -> IntervalView | None:
        if not d:
            return None
        return cls(d.get("low"), d.get("high"), bool(d.get("at_lower_bound")), bool(d.get("at_upper_bound")))


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

    @classmethod
    def from_dict(cls, d: dict) -> FitView:
        lim = d.get("limit")
        limit = None if lim is None else LimitView(lim.get("estimate"), IntervalView.from_dict(lim.get("interval")),
                                                   bool(lim.get("identified")), lim.get("describe", ""))
        return cls(d["law"], d["params"], {k: IntervalView.from_dict(v) for k, v in d.get("intervals", {}).items()},
                   d.get("mae"), int(d.get("n_points", 0)), int(d.get("n_skipped", 0)), limit, d["curve"])


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

    @classmethod
    def from_dict(cls, d: dict) -> CellView:
        return cls(d["cell"], d["activation"], d["hidden_size"], d["num_layers"], d["ratio"], d["n_params"],
                   d["tokens_budget"], d.get("epochs"), d.get("metric", "pplp"),
                   [(int(t), a) for t, a in d["points"]], {int(t): (lo, hi) for t, lo, hi in d["intervals"]},
                   d.get("interval_level"), [(int(t), v) for t, v in d["dead"]], d.get("final_loss"))


@dataclass
class StudyData:
    cells: list[CellView]
    fits: dict[str, FitView]
    failures: dict[str, str]
    widthdepth: list[dict]
    scale: list[dict]
    level: float
    comparison: dict
    paper: dict
    setup: dict
    probes: dict
    pretrained: dict | None = None
    timings: dict | None = None
    fits_doc: dict = field(default_factory=dict, repr=False)  # fits.json as read (for analysis.json)


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
    fits = docs[FITS]
    return StudyData(
        cells=[CellView.from_dict(c) for c in fits["cells"]],
        fits={c["cell"]: FitView.from_dict(c["fit"]) for c in fits["cells"] if c.get("fit")},
        failures={c["cell"]: c["fit_error"] for c in fits["cells"] if c.get("fit_error")},
        widthdepth=fits["widthdepth"], scale=fits["scale"], level=float(fits["level"]),
        comparison=docs[COMPARISON], paper=docs[PAPER], setup=docs[SETUP], probes=docs[PROBES],
        pretrained=read_json(path / PRETRAINED), timings=read_json(path / TIMINGS), fits_doc=fits)

"""The fitting stage: the paper's law per cell, the width-depth and scale analyses across cells.

``analyze(cells, spec)`` returns an ``Analysis`` whose ``to_dict()`` is ``fits.json``; fits that cannot be
made are recorded with their reason, never raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparsinglaw.errors import SparsingLawError
from sparsinglaw.laws import (
    Curve,
    FitOptions,
    compare_limits,
    fit_hinge,
    fit_law,
    law_for_activation,
    loss_optimal_range,
)
from sparsinglaw.laws.results import FitResult
from sparsinglaw.store.artifacts import CellRecord, FitRecord, FitsDocument
from sparsinglaw.study.collect import CellData, collect
from sparsinglaw.study.config import FitSpec

TOKENS_PER_PARAM = np.geomspace(1, 1000, 13)
CURVE_SAMPLES = 60  # points of each fitted law's drawn curve and band


@dataclass
class Analysis:
    cells: list[CellData]
    fits: dict[str, FitResult] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    widthdepth: list[dict] = field(default_factory=list)  # one group per (activation, N, tokens)
    scale: list[dict] = field(default_factory=list)  # one group per (activation, r, tokens)
    spec: FitSpec = field(default_factory=FitSpec)
    # The same analysis of input sparsity (cells' kept shares of projection inputs), where it was tracked
    inputs: Analysis | None = None

    def document(self) -> FitsDocument:
        """``fits.json`` as its dataclass (``sparsinglaw.store.artifacts``, which the report reads it with)."""
        cells = [_cell_row(c, self.fits.get(c.name), self.failures.get(c.name)) for c in self.cells]
        inputs = self.inputs.input_section() if self.inputs is not None else None  # absent: not tracked
        return FitsDocument(cells, self.widthdepth, [_plain_scale(g) for g in self.scale], self.spec.level,
                            self.spec.skip_fraction, inputs=inputs)

    def to_dict(self) -> dict[str, Any]:
        return self.document().to_dict()

    def input_section(self) -> FitsDocument:
        """``fits.json``'s ``inputs``: this (input) analysis as a whole document, each model's row with its
        weight bytes ratio per checkpoint beside the kept shares that were fitted."""
        doc = self.document()
        doc.schema, doc.quantity = None, "kept share of projection inputs (input CETT)"
        for row, cell in zip(doc.cells, self.cells):
            row.bytes = [list(p) for p in cell.input_bytes]
            row.bytes_intervals = [[t, *iv] for t, iv in sorted(cell.input_bytes_intervals.items())]
            row.final_bytes_ratio = cell.input_bytes[-1][1] if cell.input_bytes else None
        return doc


def _cell_row(cell: CellData, fit: FitResult | None, failure: str | None) -> CellRecord:
    """One model for ``fits.json``: its shape, every tracked measurement (with its interval where recorded),
    and its fit (``None`` with ``fit_error`` when none could be made)."""
    return CellRecord(cell.name, cell.activation, cell.hidden_size, cell.num_layers, cell.ratio, cell.n_params,
                      cell.tokens_budget, [list(p) for p in cell.points], cell.epochs, cell.metric, cell.setting,
                      cell.interval_level, cell.final_loss, [[t, *iv] for t, iv in sorted(cell.intervals.items())],
                      [list(p) for p in cell.dead], [list(p) for p in cell.losses],
                      _fit_row(fit, cell) if fit else None, failure,
                      dead_intervals=[[t, *iv] for t, iv in sorted(cell.dead_intervals.items())],
                      live=[list(p) for p in cell.live],
                      live_intervals=[[t, *iv] for t, iv in sorted(cell.live_intervals.items())],
                      never_active=[list(p) for p in cell.never_active], decay_start=cell.decay_start)


def _fit_row(fit: FitResult, cell: CellData) -> FitRecord:
    """The fit's ``to_dict()`` plus what the report shows of it ready-made: the law and its bootstrap band
    over the measured tokens, and the limit's description."""
    row = fit.to_dict()
    tokens = [t for t, _ in cell.points]
    grid = np.geomspace(min(tokens), max(tokens), CURVE_SAMPLES)
    band = fit.band(grid / 1e9)
    row["curve"] = {"tokens": grid.tolist(), "ratio": fit.predict(grid / 1e9).tolist(),
                    "low": band[0].tolist() if band is not None else None,
                    "high": band[1].tolist() if band is not None else None}
    if row["limit"] is not None:
        row["limit"]["describe"] = fit.limit.describe()
    return FitRecord.from_dict(row)


def _plain_scale(group: dict) -> dict:
    return {k: v for k, v in group.items() if k != "comparison"}


def fit_cell(cell: CellData, spec: FitSpec) -> FitResult:
    law = law_for_activation(cell.activation)
    if law is None:
        raise SparsingLawError(f"{cell.name}: no paper law for activation {cell.activation!r}")
    if len(cell.points) < law.n_params + 1:
        raise SparsingLawError(f"{cell.name}: {len(cell.points)} measured checkpoints, the {law.name} law needs "
                               f"at least {law.n_params + 1}")
    tokens, ratio = zip(*cell.points)
    curve = Curve(np.array(tokens, float), np.array(ratio, float), cell.name, cell.activation)
    try:
        return fit_law(curve, law.name, fit_options(spec))
    except SparsingLawError:
        if not spec.skip_fraction:
            raise
        return fit_law(curve, law.name, fit_options(spec, warmup=False))


def fit_options(spec: FitSpec, warmup: bool = True) -> FitOptions:
    """The options every per-cell fit of a study uses (``warmup=False``: keep the first checkpoints)."""
    skip = spec.skip_fraction or None if warmup else None
    return FitOptions(skip_fraction=skip, interval="bootstrap", n_boot=spec.n_boot, level=spec.level)


def _limit_of(fit: FitResult | None) -> dict[str, Any]:
    if fit is None or fit.limit is None:
        return {"limit": None, "low": None, "high": None, "identified": False}
    iv = fit.limit.interval
    return {"limit": fit.limit.value, "low": iv.low if iv else None, "high": iv.high if iv else None,
            "identified": fit.limit.identified}


def _groups(cells: list[CellData], key) -> dict[tuple, list[CellData]]:
    out: dict[tuple, list[CellData]] = {}
    for c in cells:
        out.setdefault(key(c), []).append(c)
    return out


def widthdepth_groups(analysis: Analysis) -> list[dict]:
    """Cells of one activation and token budget at several width-depth ratios (and similar N)."""
    groups = []
    for (act, tokens), members in _groups(analysis.cells, lambda c: (c.activation, c.tokens_budget)).items():
        for group in _groups(members, lambda c: c.budget).values():
            ratios = sorted({c.ratio for c in group})
            if len(ratios) < 2:
                continue
            rows = sorted(({"cell": c.name, "ratio": c.ratio, "final_loss": c.final_loss,
                            **_limit_of(analysis.fits.get(c.name))} for c in group), key=lambda r: r["ratio"])
            entry: dict[str, Any] = {"activation": act, "tokens": tokens, "rows": rows, "hinge": None,
                                     "loss_range": None}
            ok = [r for r in rows if r["limit"] is not None and r["identified"]]  # never a limit on its bound
            if len(ok) >= 4:
                entry["hinge"] = fit_hinge([r["ratio"] for r in ok], [r["limit"] for r in ok],
                                           level=analysis.spec.level).to_dict()
            losses = [r for r in rows if r["final_loss"] is not None]
            if len(losses) >= 2:
                entry["loss_range"] = loss_optimal_range([r["ratio"] for r in losses],
                                                         [r["final_loss"] for r in losses]).to_dict()
            groups.append(entry)
    return groups


def scale_groups(analysis: Analysis) -> list[dict]:
    """Cells of one activation and token budget at similar width-depth ratio and several sizes."""
    groups = []
    key = lambda c: (c.activation, c.tokens_budget, c.target_ratio)  # noqa: E731
    for (act, tokens, _), members in _groups(analysis.cells, key).items():
        fitted = [c for c in members if c.name in analysis.fits]
        if len({c.n_params for c in fitted}) < 2:
            continue
        tpp = [t / c.n_params for c in fitted for t, _ in c.points]  # grid over the measured tokens per parameter
        grid = np.geomspace(min(tpp), max(tpp), 12) if tpp and min(tpp) > 0 else TOKENS_PER_PARAM
        comparison = compare_limits([analysis.fits[c.name] for c in fitted], [c.n_params for c in fitted], grid)
        groups.append({"activation": act, "tokens": tokens, "comparison": comparison, **comparison.to_dict()})
    return groups


def analyze(cells: list[CellData], spec: FitSpec | None = None) -> Analysis:
    analysis = Analysis(cells, spec=spec or FitSpec())
    for cell in cells:
        try:
            analysis.fits[cell.name] = fit_cell(cell, analysis.spec)
        except SparsingLawError as err:
            analysis.failures[cell.name] = str(err)
    analysis.widthdepth = widthdepth_groups(analysis)
    analysis.scale = scale_groups(analysis)
    tracked = [c.input_cell() for c in cells if c.input_points]
    if tracked:  # the input cells carry no input points, so this goes one level deep
        analysis.inputs = analyze(tracked, analysis.spec)
    return analysis


def analyze_dir(path: str | Path) -> tuple[Analysis, dict]:
    cells, info = collect(path)
    spec = info["config"].fit if "config" in info else FitSpec()
    return analyze(cells, spec), info


"""Width-depth ratio analyses (docs/paper.md section 4).

``fit_hinge`` fits ``A0(r) = y0 + s * min(r - r_b, 0)`` for r = hidden size / layers (profiling r_b, with a
residual-bootstrap interval); ``loss_optimal_range`` finds the ratios whose loss is within a tolerance of the
best and advises the smallest ("deeper is sparser")."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from sparsinglaw.errors import ConfigError, DataError


@dataclass(frozen=True)
class HingeFit:
    """Bottleneck r_b with its interval, the plateau y0 and the slope s below the bottleneck."""

    bottleneck: float
    low: float | None
    high: float | None
    level: float
    plateau: float
    slope: float
    mae: float
    n_points: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _linear_at(r: np.ndarray, y: np.ndarray, rb: float) -> tuple[float, float, float]:
    """(SSE, y0, s) of the hinge with the bottleneck held at ``rb``."""
    x = np.column_stack([np.ones_like(r), np.minimum(r - rb, 0.0)])
    (y0, s), *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(np.sum((x @ [y0, s] - y) ** 2)), float(y0), float(s)


def _grid_sse(r: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """SSE of the hinge for every candidate bottleneck in ``grid`` at once (row-wise linear fits)."""
    x = np.minimum(r[None, :] - grid[:, None], 0.0)
    xm, ym = x.mean(axis=1, keepdims=True), y.mean()
    var = np.sum((x - xm) ** 2, axis=1)
    slope = np.sum((x - xm) * (y - ym), axis=1) / np.where(var > 0, var, np.inf)
    pred = ym + slope[:, None] * (x - xm)
    return np.sum((pred - y) ** 2, axis=1)


def _best_rb(r: np.ndarray, y: np.ndarray) -> float:
    """Grid over the observed span, then a bounded scalar refinement around the best grid point."""
    grid = np.linspace(r.min(), r.max(), 400)
    sse = _grid_sse(r, y, grid)
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(lambda g: _linear_at(r, y, g)[0], bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-6 * (r.max() - r.min())})
    return float(res.x) if res.fun <= sse[i] else float(grid[i])


def _check(r: np.ndarray, y: np.ndarray, what: str, need: int) -> None:
    if r.shape != y.shape or len(r) < need:
        raise DataError(f"{what}: needs at least {need} (ratio, value) points, got {len(r)}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(y))) or np.any(r <= 0):
        raise DataError(f"{what}: ratios must be positive and values finite")


def fit_hinge(ratio: Any, limit: Any, level: float = 0.9, n_boot: int = 200, seed: int | None = 0) -> HingeFit:
    """Hinge fit of limit activation ratio versus width-depth ratio (see module docstring)."""
    r, y = np.asarray(ratio, dtype=float), np.asarray(limit, dtype=float)
    _check(r, y, "hinge fit", 4)
    order = np.argsort(r)
    r, y = r[order], y[order]
    rb = _best_rb(r, y)
    sse, y0, s = _linear_at(r, y, rb)
    fitted = y0 + s * np.minimum(r - rb, 0.0)
    resid = (y - fitted) * np.sqrt(len(r) / max(len(r) - 3, 1))
    rng = np.random.default_rng(seed)
    boots = [_best_rb(r, fitted + rng.choice(resid, len(r))) for _ in range(n_boot)]
    q = 100 * (1 - level) / 2
    lo, hi = np.percentile(boots, [q, 100 - q]) if boots else (None, None)
    return HingeFit(rb, _f(lo), _f(hi), level, y0, s, float(np.mean(np.abs(y - fitted))), len(r))


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


@dataclass(frozen=True)
class LossRange:
    """Ratios whose loss is within ``tolerance`` (relative) of the lowest, and the advised ratio."""

    low: float
    high: float
    best_ratio: float
    best_loss: float
    tolerance: float
    recommended: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def loss_optimal_range(ratio: Any, loss: Any, tolerance: float = 0.01) -> LossRange:
    """Range of r with loss <= (1 + tolerance) * min loss; advice: its smallest r (deeper is sparser)."""
    if tolerance < 0:
        raise ConfigError(f"--loss-tolerance must be >= 0, got {tolerance}")
    r, l_ = np.asarray(ratio, dtype=float), np.asarray(loss, dtype=float)
    _check(r, l_, "loss-optimal range", 2)
    i = int(np.argmin(l_))
    ok = r[l_ <= l_[i] * (1 + tolerance)]
    return LossRange(float(ok.min()), float(ok.max()), float(r[i]), float(l_[i]), tolerance, float(ok.min()))


RATIO_KEYS = ("ratio", "width_depth_ratio", "r")
LIMIT_KEYS = ("a0", "limit", "limit_activation_ratio", "activation_ratio")
LOSS_KEYS = ("loss", "train_loss", "final_loss")


def read_widthdepth(path: str | Path) -> dict[str, np.ndarray]:
    """CSV with a ratio column (or hidden and layers) plus A0 and/or loss columns (aliases accepted)."""
    try:
        rows = list(csv.DictReader(Path(path).read_text().splitlines()))
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    cols = {k.strip().lower(): k for k in rows[0] if k}

    def column(keys: tuple[str, ...]) -> np.ndarray | None:
        key = next((cols[k] for k in keys if k in cols), None)
        if key is None:
            return None
        try:
            return np.array([float(row[key]) for row in rows])
        except (TypeError, ValueError):
            raise DataError(f"{path}: non-numeric value in column {key!r}") from None

    ratio = column(RATIO_KEYS)
    if ratio is None and "hidden" in cols and "layers" in cols:
        ratio = column(("hidden",)) / column(("layers",))
    if ratio is None:
        raise DataError(f"{path}: needs a ratio column (or hidden and layers)")
    out = {"ratio": ratio}
    for name, keys in (("limit", LIMIT_KEYS), ("loss", LOSS_KEYS)):
        col = column(keys)
        if col is not None:
            out[name] = col
    if len(out) == 1:
        raise DataError(f"{path}: needs an A0 column ({'/'.join(LIMIT_KEYS)}) and/or a loss column")
    return out

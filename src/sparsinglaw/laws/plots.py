"""PNG plots (matplotlib, Agg backend): fitted curves with interval bands, linearized views, hinge, scale.

The linearized view plots the transform in which a law is a straight line (``Law.linearize``): for
ReLU ``log(b - log(A - A0))`` against ``log D`` (slope alpha), for SiLU ``log(A0 - A)`` against ``log D``
(slope -alpha), docs/paper.md section 3.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sparsinglaw.laws.curve import Curve  # noqa: E402
from sparsinglaw.laws.results import FitResult  # noqa: E402
from sparsinglaw.laws.scale import ScaleComparison  # noqa: E402
from sparsinglaw.laws.widthdepth import HingeFit  # noqa: E402
from sparsinglaw.report.axes import readable_log_axes


def _save(fig: plt.Figure, path: str | Path) -> Path:
    readable_log_axes(fig)  # no colliding minor-tick labels on any log axis
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def _curves_panel(ax: plt.Axes, curve: Curve, results: list[FitResult]) -> None:
    ax.scatter(curve.d, curve.ratio, s=14, color="black", zorder=3, label="measured")
    grid = np.geomspace(curve.d.min(), curve.d.max(), 200)
    for res in results:
        line = ax.plot(grid, res.predict(grid), lw=1.5, label=f"{res.law} (MAE {res.mae:.2e})")[0]
        band = res.band(grid)
        if band is not None:
            ax.fill_between(grid, *band, color=line.get_color(), alpha=0.2, lw=0)
        if res.limit and res.limit.value is not None and res.limit.identified:
            ax.axhline(res.limit.value, color=line.get_color(), ls=":", lw=1)
    ax.set_xscale("log")  # checkpoints are log-spaced in tokens
    ax.set_xlabel("D (billion tokens)")
    ax.set_ylabel("activation ratio A")
    ax.set_title(curve.name)
    ax.legend(fontsize=8)


def _linear_panel(ax: plt.Axes, curve: Curve, res: FitResult) -> None:
    law, p = res.family, res.vector
    pts = law.linearize(curve.d, curve.ratio, p)
    grid = np.geomspace(curve.d.min(), curve.d.max(), 200)
    line = law.linearize(grid, res.predict(grid), p)
    ok = np.isfinite(pts.x) & np.isfinite(pts.y)
    ax.scatter(pts.x[ok], pts.y[ok], s=14, color="black", label="measured (transformed)")
    ax.plot(line.x, line.y, lw=1.5, label=f"{res.law} fit")
    ax.set_xlabel(pts.xlabel)
    ax.set_ylabel(pts.ylabel, fontsize=8)
    ax.set_title(f"linearized view ({res.law})")
    ax.legend(fontsize=8)


def plot_fit(curve: Curve, results: list[FitResult], path: str | Path) -> Path:
    """Points, fitted curves with their bootstrap band, and the first law's linearized view."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _curves_panel(left, curve, results)
    if results:
        _linear_panel(right, curve, results[0])
    return _save(fig, path)


def plot_hinge(ratio: np.ndarray, limit: np.ndarray, fit: HingeFit, path: str | Path) -> Path:
    """A0 versus width-depth ratio with the hinge and the bottleneck interval."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(ratio, limit, color="black", s=16, label="models")
    grid = np.linspace(min(ratio), max(ratio), 300)
    ax.plot(grid, fit.plateau + fit.slope * np.minimum(grid - fit.bottleneck, 0.0), label="hinge fit")
    if fit.low is not None:
        ax.axvspan(fit.low, fit.high, alpha=0.2, label=f"bottleneck {round(100 * fit.level)}% interval")
    ax.axvline(fit.bottleneck, ls=":", lw=1)
    ax.set_xlabel("width-depth ratio r = hidden / layers")
    ax.set_ylabel("limit activation ratio A0")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_scale(comparison: ScaleComparison, path: str | Path) -> Path:
    """|dA/dD| versus tokens per parameter, one line per model size."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in comparison.rows:
        ax.plot(comparison.tokens_per_param, np.abs(row.slope), marker="o",
                label=f"{row.curve} (N={row.n_params / 1e9:.2f}B)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens per parameter")
    ax.set_ylabel("|dA/dD| (per billion tokens)")
    ax.legend(fontsize=8)
    return _save(fig, path)

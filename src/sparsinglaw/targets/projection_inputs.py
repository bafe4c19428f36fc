"""Projection inputs: TEAL-style input sparsity (docs/input_sparsity.md), the target and its dense statistics.

Its units are the inputs ``x_j`` of every projection ``y = W x`` of a block, found by the architecture's
``ProjectionLayout``. One dense pass gathers each projection's CETT curve (``metrics.cett.CETTCurves`` over
a ``Projection``) and a log-binned histogram of ``|x_j|`` (TEAL's thresholds are its quantiles). A
``Setting`` is one point of a method: per-projection thresholds and, for the CETT rule, the weights
``||W[:, j]||`` that multiply ``|x_j|``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sparsinglaw.errors import ConfigError, NumericalError
from sparsinglaw.metrics.cett import CETTCurves
from sparsinglaw.models.projections import (
    KINDS,
    Projection,
    attach_inputs,
    find_projections,
    observe_outputs,
    require_called,
)
from sparsinglaw.targets.base import TargetSpec, register_target

SCHEMA = "sparsinglaw.inputs/1"  # of input-sparsity result files (``inputs.results``)
CETT_RULE = "zero x_j where |x_j| * ||W[:, j]|| < t_p (t_p per projection)"
TEAL_RULE = "zero x_j where |x_j| < t_p (t_p per projection: a quantile of |x|)"


class MagnitudeHistograms:
    """Streaming log-binned counts of ``|x_j|`` per projection (all inputs of all tokens pooled), on a
    grid placed from the first call (values outside fall into the end bins)."""

    def __init__(self, n: int, points: int = 1024):
        if points < 16:
            raise ConfigError(f"histograms need at least 16 points, got {points}")
        self.points = points
        self.log_lo = [0.0] * n
        self.log_step = [0.0] * n
        self.counts: list[torch.Tensor | None] = [None] * n

    def _place(self, i: int, magnitude: torch.Tensor) -> None:
        positive = magnitude[magnitude > 0]
        lo, hi = (float(positive.min()), float(positive.max())) if positive.numel() else (1e-12, 1.0)
        self.log_lo[i] = np.log(lo) - np.log(100.0)
        self.log_step[i] = (np.log(hi) + np.log(4.0) - self.log_lo[i]) / (self.points - 1)
        self.counts[i] = torch.zeros(self.points + 1, dtype=torch.float64)

    def place(self, i: int, x: torch.Tensor) -> None:
        """Fix projection ``i``'s grid from ``x`` (the data's first batch: every process places from it, so
        the counts are sums however the data is split over processes)."""
        self._place(i, x.detach().reshape(-1).abs().float())

    def observe(self, i: int, x: torch.Tensor) -> None:
        magnitude = x.detach().reshape(-1).abs().float()
        if self.counts[i] is None:
            self._place(i, magnitude)
        # Bin = number of grid points <= |x| (0 for zeros): cumulative counts up to bin k are |x| < grid[k].
        index = torch.floor((magnitude.clamp_min(1e-38).log() - self.log_lo[i]) / self.log_step[i]) + 1
        index = index.clamp_(0, self.points).long().cpu()
        self.counts[i] += torch.bincount(index, minlength=self.points + 1).double()

    def reduce(self, all_reduce) -> None:
        """Sum the counts of every process (``all_reduce(tensor, op)``)."""
        for counts in self.counts:
            if counts is not None:
                all_reduce(counts, "sum")

    def grid(self, i: int) -> np.ndarray:
        return np.exp(self.log_lo[i] + self.log_step[i] * np.arange(self.points))

    def dropped_share(self, i: int) -> np.ndarray:
        """Share of inputs with ``|x| < grid[k]``, per grid point k."""
        if self.counts[i] is None:
            raise NumericalError(f"no dense inputs were seen for projection {i}")
        counts = self.counts[i].numpy()
        return np.cumsum(counts)[: self.points] / counts.sum()

    def quantile(self, i: int, sparsity: float) -> float:
        """Threshold t with share ``sparsity`` of ``|x|`` below it (log-linear between grid points)."""
        if sparsity <= 0:
            return 0.0
        share, log_grid = self.dropped_share(i), np.log(self.grid(i))
        k = int(np.searchsorted(share, min(sparsity, 1.0), side="left"))
        if k >= self.points:
            return float(np.exp(log_grid[-1]))
        if k == 0 or share[k] <= share[k - 1]:
            return float(np.exp(log_grid[k]))
        frac = (sparsity - share[k - 1]) / (share[k] - share[k - 1])
        return float(np.exp(log_grid[k - 1] + frac * (log_grid[k] - log_grid[k - 1])))


class InputStatistics:
    """The dense pass's per-projection statistics: CETT curves and magnitude histograms."""

    def __init__(self, projections: Sequence[Projection], anchors: int = 5, histogram_points: int = 1024):
        self.projections = list(projections)
        self.curves = CETTCurves(self.projections, anchors=anchors)
        self.histograms = MagnitudeHistograms(len(self.projections), histogram_points)

    def observe(self, projection: Projection, x: torch.Tensor, y: torch.Tensor) -> None:
        """One call of ``projection`` (``y = W x`` without bias, from the forward hook)."""
        self.curves.observe(projection, x, None, y)
        self.histograms.observe(projection.index, x)

    def place(self, projection: Projection, x: torch.Tensor, y: torch.Tensor) -> None:
        """Fix the grids from the data's first batch as ``observe`` does on it: CETT's from its first
        sequence, the histogram's from the whole batch (another process's first batch is not the data's)."""
        first = slice(0, 1) if x.dim() == 3 else slice(None)
        self.curves.place(projection, x[first], y=y[first])
        self.histograms.place(projection.index, x)

    def reduce(self, all_reduce) -> None:
        """Combine every process's sums (``all_reduce(tensor, op)``)."""
        self.curves.reduce(all_reduce)
        self.histograms.reduce(all_reduce)

    @property
    def norms(self) -> list[torch.Tensor]:
        return self.curves.norms


@dataclass
class Setting:
    """Per-projection thresholds of one method at one value. ``norms[p]`` weighs ``|x|`` (None: TEAL)."""

    method: str
    value: float
    thresholds: list[float]
    norms: list[torch.Tensor] | None
    rule: str
    sparsities: list[float] | None = None  # the target input sparsity per projection (TEAL methods)


def cett_setting(stats: InputStatistics, cett: float) -> Setting:
    """Each projection's threshold on ``|x_j| ||W[:, j]||`` giving mean relative output error ``cett``."""
    if not 0.0 <= cett <= 1.0:
        raise ConfigError(f"cett must be in [0, 1], got {cett}")
    return Setting("cett", cett, stats.curves.thresholds(cett), stats.norms, CETT_RULE)


def uniform_setting(stats: InputStatistics, sparsity: float) -> Setting:
    """TEAL uniform: the same share of inputs dropped in every projection (thresholds = quantiles of |x|)."""
    return sparsity_setting(stats, "teal-uniform", sparsity, [sparsity] * len(stats.projections))


def sparsity_setting(stats: InputStatistics, method: str, value: float, sparsities: Sequence[float]) -> Setting:
    if not all(0.0 <= s <= 1.0 for s in sparsities):
        raise ConfigError(f"input sparsities must be in [0, 1], got {min(sparsities)}..{max(sparsities)}")
    thresholds = [stats.histograms.quantile(i, s) for i, s in enumerate(sparsities)]
    return Setting(method, value, thresholds, None, TEAL_RULE, list(sparsities))


def keep_mask(x: torch.Tensor, threshold: float, norms: torch.Tensor | None) -> torch.Tensor:
    """Which inputs a setting keeps: ``|x_j| (||W[:, j]||) >= t``."""
    magnitude = x.abs() if norms is None else x.abs() * norms.to(device=x.device, dtype=x.dtype)
    return magnitude >= threshold



class ProjectionCalls:
    """Call counts of projection hooks, one per projection, with ``require_called``."""

    def __init__(self, projections: Sequence[Projection], counts: list[int]):
        self.projections, self.counts = list(projections), counts

    def require_called(self) -> None:
        require_called(self.projections, self.counts)


class ProjectionInputs(TargetSpec):
    """The inputs of every projection of every block (``kinds`` picks some projection kinds)."""

    name = "projection-inputs"
    side = "input"
    unit = "projection input x_j"
    rule = CETT_RULE
    thresholds_kind = "input"
    sparse_modules = "projections"
    result_schema = SCHEMA

    def find_units(self, model: nn.Module, *, kinds: Sequence[str] = KINDS, **options) -> list[Projection]:
        return find_projections(model, kinds)

    @contextmanager
    def attach(self, units: Sequence[Projection], callback: Callable) -> Iterator[ProjectionCalls]:
        """``callback(projection, x)`` before every projection."""
        with attach_inputs(units, callback) as counts:
            yield ProjectionCalls(units, counts)

    @contextmanager
    def observe(self, units: Sequence[Projection], callback: Callable) -> Iterator[ProjectionCalls]:
        """``callback(projection, x, y)`` after every projection."""
        with observe_outputs(units, callback) as counts:
            yield ProjectionCalls(units, counts)

    def statistics(self, units: Sequence[Projection], *, anchors: int = 5, anchor_stride: int = 1) -> InputStatistics:
        return InputStatistics(units, anchors=anchors)

    def position_weights(self, units: Sequence[Projection]) -> list[float]:
        """By output rows: a position's pooled kept share is then the share of projection weights it read."""
        return [p.out_features for p in units]


PROJECTION_INPUTS = register_target(ProjectionInputs())

__all__ = ["CETT_RULE", "InputStatistics", "MagnitudeHistograms", "PROJECTION_INPUTS", "ProjectionCalls",
           "ProjectionInputs", "SCHEMA", "Setting", "TEAL_RULE", "cett_setting", "keep_mask", "sparsity_setting",
           "uniform_setting"]

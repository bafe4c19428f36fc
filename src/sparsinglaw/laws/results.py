"""Typed results of law fits, each with ``to_dict()`` for JSON output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparsinglaw.laws.families import LAWS, Law
from sparsinglaw.tables import format_estimate


def _num(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval at ``level`` (e.g. 0.9) from ``method``."""

    low: float
    high: float
    level: float
    method: str
    at_lower_bound: bool = False
    at_upper_bound: bool = False

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    def to_dict(self) -> dict[str, Any]:
        return {"low": _num(self.low), "high": _num(self.high), "level": self.level, "method": self.method,
                "at_lower_bound": self.at_lower_bound, "at_upper_bound": self.at_upper_bound}


@dataclass(frozen=True)
class LimitEstimate:
    """The limit activation ratio A0 (D -> infinity) with its interval and an identification verdict."""

    value: float | None
    interval: Interval | None
    identified: bool
    reason: str

    def describe(self) -> str:
        if self.value is None:
            return "no finite limit"
        if not self.identified:
            return f"limit not identified ({self.reason})"
        if self.interval is None:
            return f"{self.value:.4f} (no interval computed)"
        return " ".join(format_estimate(self.value, (self.interval.low, self.interval.high)))  # to its precision

    def to_dict(self) -> dict[str, Any]:
        return {"value": _num(self.value) if self.identified else None, "estimate": _num(self.value),
                "identified": self.identified, "reason": self.reason,
                "interval": self.interval.to_dict() if self.interval else None}


@dataclass
class FitResult:
    """One law fitted to one curve: named parameters, goodness of fit, intervals and the limit A0."""

    law: str
    curve: str
    params: dict[str, float]
    mae: float
    mse: float
    sse: float
    aic: float
    bic: float
    n_points: int
    n_skipped: int
    converged: bool = True
    level: float = 0.9
    boot_failures: int = 0
    intervals: dict[str, Interval] = field(default_factory=dict)
    limit: LimitEstimate | None = None
    misfit: str | None = None  # why the law does not follow its points (laws.solver.misfit), else None
    d: np.ndarray | None = field(default=None, repr=False)
    ratio: np.ndarray | None = field(default=None, repr=False)
    samples: np.ndarray | None = field(default=None, repr=False)

    @property
    def family(self) -> Law:
        return LAWS[self.law]

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.params[n] for n in self.family.param_names])

    def predict(self, d: np.ndarray | float) -> np.ndarray:
        """A at D (billions of tokens) from the fitted parameters."""
        return self.family(np.atleast_1d(np.asarray(d, dtype=float)), self.vector)

    def band(self, d: np.ndarray, level: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Pointwise percentile band of the curve over bootstrap samples (None without samples)."""
        if self.samples is None or len(self.samples) < 2:
            return None
        lvl = level or self.level
        curves = np.array([self.family(d, p) for p in self.samples])
        q = 100 * (1 - lvl) / 2
        return np.nanpercentile(curves, q, axis=0), np.nanpercentile(curves, 100 - q, axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "law": self.law, "formula": self.family.formula, "curve": self.curve,
            "params": {k: _num(v) for k, v in self.params.items()},
            "mae": self.mae, "mse": self.mse, "sse": self.sse, "aic": self.aic, "bic": self.bic,
            "n_points": self.n_points, "n_skipped": self.n_skipped, "converged": self.converged,
            "level": self.level, "bootstrap_failures": self.boot_failures,
            "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
            "limit": self.limit.to_dict() if self.limit else None, "misfit": self.misfit,
        }


@dataclass
class FitReport:
    """All laws fitted to one curve, ranked; failed laws are listed with their reason."""

    curve: str
    rank_by: str
    results: list[FitResult]
    failures: dict[str, str] = field(default_factory=dict)
    preferred: str | None = None  # the paper's form for the curve's activation, when known

    @property
    def best(self) -> FitResult | None:
        if self.preferred:
            for r in self.results:
                if r.law == self.preferred:
                    return r
        return self.results[0] if self.results else None

    def to_dict(self) -> dict[str, Any]:
        return {"curve": self.curve, "rank_by": self.rank_by, "preferred": self.preferred,
                "ranking": [r.law for r in self.results], "fits": [r.to_dict() for r in self.results],
                "failures": self.failures}

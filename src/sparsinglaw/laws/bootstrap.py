"""Bootstrap confidence intervals for law parameters and the limit A0.

``residual`` (default): resampled residuals, centred and inflated by sqrt(n / (n - k)), added to the fit;
``pairs``: (D, A) points resampled. Each refit starts from the original estimate and the best linearized
guess. Percentile intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsinglaw.errors import ConfigError
from sparsinglaw.laws.families import Law
from sparsinglaw.laws.results import Interval
from sparsinglaw.laws.solver import FitError, best_fit

METHODS = ("residual", "pairs")


@dataclass(frozen=True)
class BootstrapSamples:
    """Parameter vectors refitted on resampled data (rows) and how many refits failed."""

    samples: np.ndarray
    failures: int
    method: str


def _resample(rng: np.random.Generator, d: np.ndarray, a: np.ndarray, fitted: np.ndarray,
              method: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(a)
    if method == "residual":
        resid = a - fitted
        resid = (resid - resid.mean()) * np.sqrt(n / max(n - k, 1))
        return d, np.clip(fitted + rng.choice(resid, size=n, replace=True), 0.0, 1.0)
    idx = np.sort(rng.choice(n, size=n, replace=True))
    return d[idx], a[idx]


def bootstrap(law: Law, d: np.ndarray, a: np.ndarray, params: np.ndarray, *, n_boot: int = 200,
              method: str = "residual", seed: int | None = 0) -> BootstrapSamples:
    """Refit ``law`` on ``n_boot`` resampled data sets (see module docstring for ``method``)."""
    if method not in METHODS:
        raise ConfigError(f"unknown bootstrap method {method!r}: choose {' or '.join(METHODS)}")
    if n_boot < 2:
        raise ConfigError(f"--n-boot must be at least 2, got {n_boot}")
    rng = np.random.default_rng(seed)
    fitted = law.func(d, *params)
    rows, failures = [], 0
    for _ in range(n_boot):
        db, ab = _resample(rng, d, a, fitted, method, law.n_params)
        if len(np.unique(db)) <= law.n_params:
            failures += 1
            continue
        try:
            rows.append(best_fit(law, db, ab, extra=[params], n_starts=1).params)
        except FitError:
            failures += 1
    samples = np.array(rows) if rows else np.empty((0, law.n_params))
    return BootstrapSamples(samples, failures, method)


def percentile_interval(values: np.ndarray, level: float, method: str, lower: float = -np.inf,
                        upper: float = np.inf) -> Interval | None:
    """Percentile interval; flags a bound when more than the tail mass of samples sits on it."""
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    tail = (1 - level) / 2
    lo, hi = np.percentile(values, [100 * tail, 100 * (1 - tail)])
    tol = 1e-6 * max(1.0, abs(float(np.median(values))))
    at_lo = bool(np.isfinite(lower) and np.mean(values <= lower + tol) >= tail)
    at_hi = bool(np.isfinite(upper) and np.mean(values >= upper - tol) >= tail)
    return Interval(float(lo), float(hi), level, f"bootstrap-{method}", at_lo, at_hi)


def parameter_intervals(law: Law, boot: BootstrapSamples, level: float) -> dict[str, Interval]:
    """Percentile intervals for every named parameter (skipped when too few refits succeeded)."""
    out = {}
    for i, name in enumerate(law.param_names):
        iv = percentile_interval(boot.samples[:, i], level, boot.method, law.lower[i], law.upper[i])
        if iv is not None:
            out[name] = iv
    return out


def limit_samples(law: Law, boot: BootstrapSamples) -> np.ndarray:
    """The limit A (D -> infinity) for each bootstrap sample (NaN where the law has none)."""
    vals = [law.limit(p) for p in boot.samples]
    return np.array([np.nan if v is None else v for v in vals], dtype=float)

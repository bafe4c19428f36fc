"""Fit the sparsing laws (docs/paper.md section 3) to an activation curve, with uncertainty.

``fit_law(curve, "relu")`` drops warmup points, fits with the bounded multi-start solver, attaches
bootstrap and/or profile intervals and reports "limit not identified" when A0's interval reaches a bound
or is wider than ``max_limit_width``. ``fit_all(curve)`` fits every family, ranks them and lists failures."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sparsinglaw.config import Config
from sparsinglaw.errors import ConfigError, DataError, SparsingLawError
from sparsinglaw.laws import bootstrap as boot
from sparsinglaw.laws.curve import Curve
from sparsinglaw.laws.families import LAWS, Law, get_law, law_for_activation
from sparsinglaw.laws.profile import profile_interval
from sparsinglaw.laws.results import FitReport, FitResult, Interval, LimitEstimate
from sparsinglaw.laws.solver import MAX_NFEV, FitError, best_fit, goodness, misfit

INTERVALS = ("bootstrap", "profile", "both", "none")
RANKINGS = ("aic", "bic", "mae", "mse")


class LawFitError(SparsingLawError):
    """A law could not be fitted to a curve (message names the law and the reason)."""


@dataclass(frozen=True)
class FitOptions(Config):
    """How to fit: warmup exclusion, interval method, bootstrap size, level and identification width (a
    frozen ``Config``, so one options object can be shared by every fit of a run)."""

    skip_tokens: float | None = None
    skip_fraction: float | None = None
    interval: str = "both"
    n_boot: int = 200
    boot_method: str = "residual"
    level: float = 0.9
    seed: int | None = 0
    max_limit_width: float = 0.05
    max_nfev: int = MAX_NFEV

    def validate(self) -> None:
        if self.interval not in INTERVALS:
            raise ConfigError(f"unknown interval method {self.interval!r}: choose {', '.join(INTERVALS)}")
        if not 0 < self.level < 1:
            raise ConfigError(f"--level must be in (0, 1), got {self.level}")
        if self.max_limit_width <= 0:
            raise ConfigError(f"--max-limit-width must be positive, got {self.max_limit_width}")


def as_curve(data: Curve | tuple[Any, Any], name: str = "curve") -> Curve:
    """A Curve from a Curve or a (tokens, activation_ratio) pair; tokens are raw counts, not billions."""
    if isinstance(data, Curve):
        return data
    try:
        tokens, ratio = data
    except (TypeError, ValueError):
        raise DataError("data must be a Curve or a (tokens, activation_ratio) pair") from None
    return Curve(np.asarray(tokens, dtype=float), np.asarray(ratio, dtype=float), name)


def _options(options: FitOptions | None, overrides: dict[str, Any]) -> FitOptions:
    """``options`` with keyword overrides laid over it, through ``from_dict`` so that an unknown or mistyped
    key is refused as in every config (``unknown setting bogus (known: ...)``)."""
    base = options or FitOptions()
    return FitOptions.from_dict({**base.to_dict(), **overrides}) if overrides else base


def fit_law(data: Curve | tuple[Any, Any], law: str | Law = "relu", options: FitOptions | None = None,
            **overrides: Any) -> FitResult:
    """Fit one law family to a curve (keyword overrides update ``options``, e.g. ``n_boot=100``)."""
    opts = _options(options, overrides)
    family = law if isinstance(law, Law) else get_law(law)
    full = as_curve(data)
    curve = full.skip_warmup(opts.skip_tokens, opts.skip_fraction)
    d, a = curve.d, curve.ratio
    if len(curve) <= family.n_params:
        raise DataError(f"law {family.name}: {len(curve)} points after warmup exclusion, needs at least "
                        f"{family.n_params + 1} for {family.n_params} parameters")
    try:
        sol = best_fit(family, d, a, max_nfev=opts.max_nfev)
    except FitError as err:
        raise LawFitError(f"law {family.name} on {curve.name}: {err}") from None
    result = FitResult(family.name, curve.name, dict(zip(family.param_names, map(float, sol.params), strict=True)),
                       n_points=len(curve), n_skipped=len(full) - len(curve), converged=sol.converged,
                       level=opts.level, d=d, ratio=a, **goodness(family, d, a, sol.params))
    result.misfit = misfit(d, a, result.sse)
    _attach_uncertainty(result, family, opts)
    if result.misfit and result.limit is not None and result.limit.identified:  # no finding from such a fit
        result.limit = replace(result.limit, identified=False, reason=result.misfit)
    return result


def _attach_uncertainty(result: FitResult, law: Law, opts: FitOptions) -> None:
    """Bootstrap and/or profile intervals, then the limit verdict."""
    d, a, p = result.d, result.ratio, result.vector
    limit_iv: Interval | None = None
    if opts.interval in ("bootstrap", "both"):
        samples = boot.bootstrap(law, d, a, p, n_boot=opts.n_boot, method=opts.boot_method, seed=opts.seed)
        result.samples, result.boot_failures = samples.samples, samples.failures
        result.intervals.update(boot.parameter_intervals(law, samples, opts.level))
        lo, hi = limit_bounds(law)
        limit_iv = boot.percentile_interval(boot.limit_samples(law, samples), opts.level,
                                            samples.method, lo, hi)
    if opts.interval in ("profile", "both"):
        for name in _profiled(law):
            iv = profile_interval(law, d, a, p, name, opts.level)
            key = name if opts.interval == "profile" else f"{name}_profile"
            result.intervals[key] = iv
            if name == law.limit_param:
                limit_iv = iv if limit_iv is None else _union(limit_iv, iv)
    result.limit = assess_limit(law, law.limit(p), limit_iv, opts.max_limit_width)


def _profiled(law: Law) -> list[str]:
    """Parameters that get a profile interval: the limit A0 and the exponent alpha, when the law has them."""
    return [n for n in (law.limit_param, "alpha") if n and n in law.param_names]


def limit_bounds(law: Law) -> tuple[float, float]:
    if law.limit_param is None:
        return -np.inf, np.inf
    j = law.index(law.limit_param)
    return law.lower[j], law.upper[j]


def _union(a: Interval, b: Interval) -> Interval:
    """The hull of two intervals (the conservative combination of bootstrap and profile)."""
    return Interval(min(a.low, b.low), max(a.high, b.high), a.level, f"{a.method}+{b.method}",
                    a.at_lower_bound or b.at_lower_bound, a.at_upper_bound or b.at_upper_bound)


def assess_limit(law: Law, value: float | None, interval: Interval | None, max_width: float) -> LimitEstimate:
    """Identified unless the estimate or its interval reaches a bound, or the interval is too wide."""
    if value is None or not np.isfinite(value):
        return LimitEstimate(None, interval, False, f"law {law.name} has no finite limit")
    lo, hi = limit_bounds(law)
    pct = f"{round(100 * interval.level)}% interval" if interval else "estimate"
    for edge in (lo, hi):
        if abs(value - edge) < 1e-6:
            return LimitEstimate(value, interval, False, f"estimate sits on the bound {law.limit_param}={edge:g}")
    if interval is not None:
        if interval.at_lower_bound or interval.at_upper_bound:
            edge = lo if interval.at_lower_bound else hi
            return LimitEstimate(value, interval, False, f"{pct} reaches the bound {law.limit_param}={edge:g}")
        if interval.width > max_width:
            return LimitEstimate(value, interval, False,
                                 f"{pct} is {interval.width:.3g} wide (> {max_width:g})")
    return LimitEstimate(value, interval, True, "identified" if interval else "identified (no interval computed)")


def fit_all(data: Curve | tuple[Any, Any], laws: list[str] | None = None, rank_by: str = "aic",
            options: FitOptions | None = None, **overrides: Any) -> FitReport:
    """Fit every law in ``laws`` (default: all registered), rank them; failures are reported, not raised."""
    if rank_by not in RANKINGS:
        raise ConfigError(f"unknown ranking {rank_by!r}: choose {', '.join(RANKINGS)}")
    opts = _options(options, overrides)
    curve = as_curve(data)
    results, failures = [], {}
    for name in laws or list(LAWS):
        try:
            results.append(fit_law(curve, name, opts))
        except SparsingLawError as err:
            failures[name] = str(err)
    results.sort(key=lambda r: getattr(r, rank_by))
    preferred = law_for_activation(curve.activation)
    return FitReport(curve.name, rank_by, results, failures, preferred.name if preferred else None)


def choose_law(curve: Curve, law: str) -> str:
    """Resolve ``--law``: a family name, or ``paper`` for the activation's published form."""
    if law != "paper":
        return get_law(law).name
    family = law_for_activation(curve.activation)
    if family is None:
        raise ConfigError(f"{curve.name}: activation unknown, cannot pick the paper's law; pass --law")
    return family.name

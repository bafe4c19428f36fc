"""Use a fitted law: A at a token count, tokens needed to come within a distance of A0, back-tests, and
the token budget at which a limit not yet identified would be.

For the paper's laws the distance to the limit has a closed form, |A(D) - A0| = exp(-c D^alpha + b) (ReLU)
or c D^(-alpha) (SiLU) (docs/paper.md section 3); we solve it numerically for any registered law by bisection
on log D, so baselines work too. Intervals are percentiles over the fit's bootstrap samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsinglaw.errors import ConfigError, DataError
from sparsinglaw.laws.curve import TOKEN_SCALE, Curve
from sparsinglaw.laws.families import Law
from sparsinglaw.laws.fit import FitOptions, LawFitError, fit_law, limit_bounds
from sparsinglaw.laws.results import FitResult

LOG_D_RANGE = (-9.0, 30.0)  # search D in [e^-9, e^30] billions of tokens


@dataclass(frozen=True)
class Prediction:
    """A predicted activation ratio at ``tokens``, with a bootstrap band when available."""

    tokens: float
    value: float
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "activation_ratio": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Reach:
    """Tokens after which A stays within ``distance`` of its limit (None: never, within the search range)."""

    distance: float
    tokens: float | None
    low: float | None = None
    high: float | None = None
    identified: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"distance": self.distance, "tokens": self.tokens, "low": self.low, "high": self.high,
                "limit_identified": self.identified}


def _band(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None, None
    q = 100 * (1 - level) / 2
    return float(np.percentile(values, q)), float(np.percentile(values, 100 - q))


def predict(result: FitResult, tokens: float) -> Prediction:
    """A at ``tokens`` (raw token count) with the bootstrap percentile band when the fit has samples."""
    if not tokens > 0:
        raise ConfigError(f"--predict-at must be a positive token count, got {tokens}")
    d = np.array([tokens / TOKEN_SCALE])
    value = float(result.predict(d)[0])
    if result.samples is None:
        return Prediction(tokens, value)
    lo, hi = _band(np.array([result.family(d, p)[0] for p in result.samples]), result.level)
    return Prediction(tokens, value, lo, hi)


def _reach_d(law: Law, params: np.ndarray, distance: float) -> float:
    """Smallest D (billions) with |A(D') - limit| <= distance for all D' >= D (monotone laws); nan if none."""
    limit = law.limit(params)
    if limit is None:
        return float("nan")

    def gap(log_d: float) -> float:
        return abs(float(law.func(np.array([np.exp(log_d)]), *params)[0]) - limit)

    lo, hi = LOG_D_RANGE
    if gap(hi) > distance:
        return float("nan")
    if gap(lo) <= distance:
        return float(np.exp(lo))
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gap(mid) > distance else (lo, mid)
    return float(np.exp(hi))


def tokens_to_within(result: FitResult, distance: float) -> Reach:
    """Tokens needed for A to come within ``distance`` of the limit A0 (with bootstrap interval)."""
    if not distance > 0:
        raise ConfigError(f"--within must be a positive distance, got {distance}")
    law = result.family
    if law.limit(result.vector) is None:
        raise ConfigError(f"law {law.name} has no finite limit: cannot compute tokens to reach it")
    d = _reach_d(law, result.vector, distance)
    tokens = None if np.isnan(d) else d * TOKEN_SCALE
    identified = bool(result.limit.identified) if result.limit else True
    if result.samples is None:
        return Reach(distance, tokens, identified=identified)
    ds = np.array([_reach_d(law, p, distance) for p in result.samples]) * TOKEN_SCALE
    lo, hi = _band(ds, result.level)
    return Reach(distance, tokens, lo, hi, identified)


@dataclass(frozen=True)
class Backtest:
    """Fit on the first part of a curve, error on the rest."""

    law: str
    train_points: int
    test_points: int
    train_mae: float
    test_mae: float
    test_max_error: float
    final_tokens: float
    final_actual: float
    final_predicted: float
    fit: FitResult

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "fit"}
        return {**out, "fit": self.fit.to_dict()}


def backtest(curve: Curve, law: str, train_fraction: float = 0.5, options: FitOptions | None = None,
             **overrides: Any) -> Backtest:
    """Fit ``law`` on the first ``train_fraction`` of the points and report the error on the rest."""
    if not 0 < train_fraction < 1:
        raise ConfigError(f"--backtest fraction must be in (0, 1), got {train_fraction}")
    n_train = int(round(train_fraction * len(curve)))
    if n_train >= len(curve):
        raise DataError(f"{curve.name}: back-test leaves no test points ({len(curve)} points)")
    mask = np.arange(len(curve)) < n_train
    fit = fit_law(curve.subset(mask, "[train]"), law, options, **overrides)
    test = curve.subset(~mask, "[test]")
    err = fit.predict(test.d) - test.ratio
    return Backtest(fit.law, int(fit.n_points), len(test), fit.mae, float(np.mean(np.abs(err))),
                    float(np.max(np.abs(err))), float(test.tokens[-1]), float(test.ratio[-1]),
                    float(fit.predict(test.d[-1:])[0]), fit)


# Budgets tried, as multiples of the tokens already fitted, and the most points one simulated fit gets
# (beyond it, neighbouring checkpoints are averaged and their scatter shrunk by sqrt(group size)).
IDENTIFY_FACTORS = (4, 16, 64, 256, 1024)
IDENTIFY_MAX_POINTS = 200
IDENTIFY_N_BOOT = 50  # per simulated fit: the question is coarse, the fits many


@dataclass(frozen=True)
class Identification:
    """The budget at which the limit would be identified (``tokens``; None: not within ``max_factor`` x,
    or ``reason`` why no extrapolation is made)."""

    tokens: float | None
    factor: float | None
    max_factor: float
    trained_tokens: float
    reason: str | None = None

    def describe(self) -> str:
        if self.reason:
            return self.reason
        if self.tokens is None:
            return f"not identified within {self.max_factor:g}x the {self.trained_tokens:.3g} tokens trained"
        return f"identified at about {self.tokens:.2g} tokens ({self.factor:g}x), if the law and its scatter hold"


def tokens_to_identify(result: FitResult, options: FitOptions | None = None, *,
                       factors: tuple[float, ...] = IDENTIFY_FACTORS, seed: int = 0) -> Identification:
    """Extrapolate the token budget at which the limit A0 would be identified (off its bounds, interval at
    most ``max_limit_width`` wide) by simulation: the fitted law extended to ``factor`` x the tokens with the
    fit's residual scatter, refitted; the smallest such factor. A rough guide: it assumes the law holds."""
    d, law = np.asarray(result.d, float), result.family
    base = (options or FitOptions()).to_dict()
    # the simulated points start after warmup
    opts = FitOptions.from_dict({**base, "skip_tokens": None, "skip_fraction": None,
                                 "n_boot": min(base["n_boot"], IDENTIFY_N_BOOT)})
    trained = float(d.max() * TOKEN_SCALE)
    lo, hi = limit_bounds(law)
    a0 = law.limit(result.vector)
    if a0 is None or min(abs(a0 - lo), abs(a0 - hi)) < 1e-6:  # the law extended would stay on the bound
        return Identification(None, None, float(factors[-1]), trained,
                              "no extrapolation: the fitted limit sits on its bound (the curve does not bend "
                              "toward a limit yet)")
    step, sigma = float(np.median(np.diff(d))), float(np.sqrt(result.mse))
    rng = np.random.default_rng(seed)
    for factor in factors:
        n = int(np.floor((d.max() * factor - d.min()) / step)) + 1
        group = max(1, int(np.ceil(n / IDENTIFY_MAX_POINTS)))
        sim_d = d.min() + step * (np.arange(n // group) * group + (group - 1) / 2)
        truth = law.func(sim_d, *result.vector)
        sim_a = np.clip(truth + rng.normal(0.0, sigma / np.sqrt(group), len(sim_d)), 1e-6, 1 - 1e-6)
        try:
            fit = fit_law((sim_d * TOKEN_SCALE, sim_a), law.name, opts)
        except (LawFitError, DataError):
            continue
        if fit.limit is not None and fit.limit.identified:
            return Identification(float(sim_d.max() * TOKEN_SCALE), float(factor), float(factors[-1]), trained)
    return Identification(None, None, float(factors[-1]), trained)

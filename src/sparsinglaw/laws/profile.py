"""Profile-likelihood confidence intervals for one named parameter (e.g. A0 or alpha).

Hold the parameter at a value v, refit the others, and compare the sums of squares with the F statistic
``F(v) = (SSE(v) - SSE_min) / (SSE_min / (n - k))``; the interval at ``level`` is where
``F(v) <= F_{1, n-k}(level)``. Walking outward stops at the parameter's bounds: an interval that reaches a
bound (A0 = 0 for the 0.4B ReLU curve) means the data do not pin the parameter down on that side.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.optimize import brentq

from sparsinglaw.laws.families import Law
from sparsinglaw.laws.results import Interval
from sparsinglaw.laws.solver import FitError, best_fit

MAX_STEPS = 24


def _start_step(law: Law, d: np.ndarray, a: np.ndarray, params: np.ndarray, j: int, s2: float) -> float:
    """A step of about one asymptotic standard error (from J^T J), or a small relative step."""
    jac = law.jac(d, *params)
    with np.errstate(all="ignore"):
        cov = np.linalg.pinv(jac.T @ jac) * s2
    se = float(np.sqrt(cov[j, j])) if np.isfinite(cov[j, j]) and cov[j, j] > 0 else 0.0
    scale = 1e-3 * max(abs(params[j]), 1e-3)
    return max(min(se, 0.5 * max(abs(params[j]), 1e-3)), scale)


class _Profile:
    """F statistic of the fit with parameter ``j`` held at a value (warm-started refits)."""

    def __init__(self, law: Law, d: np.ndarray, a: np.ndarray, params: np.ndarray, j: int) -> None:
        self.law, self.d, self.a, self.params, self.j = law, d, a, params, j
        n, k = len(a), law.n_params
        self.sse0 = float(np.sum((law.func(d, *params) - a) ** 2))
        self.s2 = max(self.sse0 / max(n - k, 1), 1e-300)
        self.last = params

    def __call__(self, v: float) -> float:
        try:
            sol = best_fit(self.law, self.d, self.a, extra=[self.last], fixed={self.j: v}, n_starts=1)
        except FitError:
            return float("inf")
        self.last = sol.params
        return (sol.sse - self.sse0) / self.s2


def _walk(prof: _Profile, v0: float, step: float, side: int, crit: float, bound: float) -> tuple[float, bool]:
    """Endpoint on one side: where F crosses ``crit``, or the bound (flagged True) if never crossed."""
    inside = v0
    for _ in range(MAX_STEPS):
        v = v0 + side * step
        if (side < 0 and v <= bound) or (side > 0 and v >= bound):
            v = bound
        f = prof(v)
        if f > crit:
            return _crossing(prof, inside, v, crit, step), False
        inside = v
        if v == bound:
            return bound, True
        step *= 2.0
    return inside, True


def _crossing(prof: _Profile, inside: float, outside: float, crit: float, step: float) -> float:
    """Where F crosses ``crit`` between an inside and an outside point (the outside point if the
    refits disagree on the sign: conservative)."""
    prof.last = prof.params
    try:
        return brentq(lambda x: prof(x) - crit, min(inside, outside), max(inside, outside),
                      xtol=1e-10 + 1e-6 * step)
    except ValueError:
        return outside


def profile_interval(law: Law, d: np.ndarray, a: np.ndarray, params: np.ndarray, param: str,
                     level: float = 0.9) -> Interval:
    """Profile-likelihood interval for ``param`` at ``level`` (see module docstring)."""
    j = law.index(param)
    prof = _Profile(law, d, a, np.asarray(params, dtype=float), j)
    crit = float(stats.f.ppf(level, 1, max(len(a) - law.n_params, 1)))
    step = _start_step(law, d, a, prof.params, j, prof.s2)
    v0 = float(prof.params[j])
    lo, at_lo = _walk(prof, v0, step, -1, crit, law.lower[j])
    prof.last = prof.params
    hi, at_hi = _walk(prof, v0, step, +1, crit, law.upper[j])
    return Interval(float(lo), float(hi), level, "profile", at_lo, at_hi)

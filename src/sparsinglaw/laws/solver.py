"""Bounded multi-start least squares for a law family (scipy.optimize.least_squares, trust-region).

The paper fits with Levenberg-Marquardt (curve_fit); LM cannot honour bounds, so we use the bounded
trust-region reflective method with the law's analytic Jacobian, started from every linearized guess
the law proposes (``Law.starts``) and keep the lowest sum of squares. Parameters may be held fixed
(for profile likelihood).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from sparsinglaw.laws.families import Law

MAX_NFEV = 400


class FitError(Exception):
    """Raised inside the solver; ``fit.py`` turns it into a user-facing SparsingLawError."""


@dataclass(frozen=True)
class Solution:
    """Best parameters found, their sum of squared residuals, and whether the optimizer converged."""

    params: np.ndarray
    sse: float
    converged: bool
    message: str


def solve_from(law: Law, d: np.ndarray, a: np.ndarray, start: np.ndarray,
               fixed: dict[int, float] | None = None, max_nfev: int = MAX_NFEV) -> Solution:
    """One bounded least-squares run from ``start``; ``fixed`` maps parameter index to a held value."""
    fixed = fixed or {}
    space = law.space(d)
    free = [i for i in range(law.n_params) if i not in fixed]
    full = space.encode(law.clip(start))
    for i, v in fixed.items():
        full[i] = v

    def expand(x: np.ndarray) -> np.ndarray:
        q = full.copy()
        q[free] = x
        return q

    def resid(x: np.ndarray) -> np.ndarray:
        r = space.func(expand(x)) - a
        return np.where(np.isfinite(r), r, 1e6)

    def jac(x: np.ndarray) -> np.ndarray:
        j = space.jac(expand(x))[:, free]
        return np.where(np.isfinite(j), j, 0.0)

    lo, hi = np.array(space.lower)[free], np.array(space.upper)[free]
    x0 = np.clip(full[free], lo, hi)
    try:
        with np.errstate(all="ignore"):
            res = least_squares(resid, x0, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac",
                                ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=max_nfev)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
        return Solution(space.decode(full), float("inf"), False, str(err))
    p = space.decode(expand(res.x))
    sse = float(np.sum((law.func(d, *p) - a) ** 2))
    return Solution(p, sse if np.isfinite(sse) else float("inf"), res.status > 0, res.message)


def best_fit(law: Law, d: np.ndarray, a: np.ndarray, extra: list[np.ndarray] | None = None,
             fixed: dict[int, float] | None = None, max_nfev: int = MAX_NFEV,
             n_starts: int | None = None) -> Solution:
    """Lowest-SSE solution over the law's linearized starts plus ``extra`` starts."""
    starts = list(extra or []) + law.starts(d, a)[:n_starts]
    best: Solution | None = None
    for s in starts:
        sol = solve_from(law, d, a, (s if fixed else _project(law, d, a, s, max_nfev)), fixed, max_nfev)
        if np.isfinite(sol.sse) and (best is None or _better(sol, best)):
            best = sol
    if best is None:
        raise FitError(f"no finite solution from {len(starts)} starting points")
    if not best.converged:
        raise FitError(f"did not converge within {max_nfev} evaluations from {len(starts)} starting points")
    return best


def _project(law: Law, d: np.ndarray, a: np.ndarray, start: np.ndarray, max_nfev: int) -> np.ndarray:
    """Variable-projection pre-fit when the law offers one (see projection.py); the start otherwise.

    Not used for profiling (parameters held fixed): warm starts along the profile are already close."""
    if law.project is None:
        return start
    try:
        with np.errstate(all="ignore"):
            p, ok = law.project(d, a, law.clip(start), max_nfev)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return start
    return p if ok and np.all(np.isfinite(p)) else start


def _better(new: Solution, old: Solution) -> bool:
    """Prefer converged runs; among equals, the lower SSE."""
    if new.converged != old.converged:
        return new.converged
    return new.sse < old.sse


def goodness(law: Law, d: np.ndarray, a: np.ndarray, params: np.ndarray) -> dict[str, float]:
    """MAE, MSE, SSE, and Gaussian AIC / BIC (k = parameters + 1 for the noise variance)."""
    r = law.func(d, *params) - a
    n, k = len(a), law.n_params + 1
    sse = float(np.sum(r**2))
    ll_term = n * np.log(max(sse, 1e-300) / n)
    return {"mae": float(np.mean(np.abs(r))), "mse": sse / n, "sse": sse,
            "aic": float(ll_term + 2 * k), "bic": float(ll_term + k * np.log(n))}


# A law whose squared error is this many times that of a smooth stand-in does not follow its points.
MISFIT_FACTOR = 2.0


def misfit(d: np.ndarray, a: np.ndarray, sse: float) -> str | None:
    """Why a fitted law does not follow its points, or None. The stand-in is a quadratic in ln D: smooth, with
    no more parameters than the laws, it follows any gently curving trend; a law that leaves several times
    its error (a flat line with a late step where the points fall smoothly) is no description of the data."""
    if len(a) < 5:
        return None
    x = np.log(np.asarray(d, float))
    residual = a - np.polyval(np.polyfit(x, a, 2), x)
    smooth = float(np.sum(residual**2))
    if sse > MISFIT_FACTOR * smooth + 1e-12 * max(float(np.sum((a - a.mean()) ** 2)), 1e-300):
        return (f"the law does not follow its points: squared error {sse:.3g}, {sse / max(smooth, 1e-300):.1f}x "
                f"that of a quadratic in ln D ({smooth:.3g})")
    return None

"""Variable projection for the paper's laws: optimize the nonlinear parameters, solve the linear ones.

Both laws are linear in two parameters once the others are fixed (ReLU in Box-Cox coordinates,
``A = A0 + B * exp(-s * (x^alpha - 1)/alpha)``; SiLU ``A = A0 + c * (-D^(-alpha))``). Eliminating that pair
removes the flat A0-versus-amplitude valley that makes trust-region steps crawl; the solver then polishes
in the full parameter space."""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

Array = np.ndarray
_TOL = {"ftol": 1e-12, "xtol": 1e-12, "gtol": 1e-12}


def bounded_pair(g: Array, a: Array, lo: tuple[float, float], hi: tuple[float, float]) -> tuple[float, float]:
    """Least squares ``a ~ beta0 + beta1 * g`` with box bounds on (beta0, beta1), via KKT candidates."""
    gm, am = g.mean(), a.mean()
    var = float(np.sum((g - gm) ** 2))
    b1 = float(np.sum((g - gm) * (a - am)) / var) if var > 0 else 0.0
    cands = [(am - b1 * gm, b1)]
    for b0 in lo[0], hi[0]:
        if np.isfinite(b0):
            gg = float(np.dot(g, g))
            cands.append((b0, float(np.dot(g, a - b0) / gg) if gg > 0 else 0.0))
    for b1c in lo[1], hi[1]:
        if np.isfinite(b1c):
            cands.append((float(np.mean(a - b1c * g)), b1c))
    cands += [(b0, b1c) for b0 in (lo[0], hi[0]) for b1c in (lo[1], hi[1]) if np.isfinite(b0) and np.isfinite(b1c)]
    best, best_sse = (0.0, 0.0), np.inf
    for b0, b1 in cands:
        b0, b1 = float(np.clip(b0, lo[0], hi[0])), float(np.clip(b1, lo[1], hi[1]))
        sse = float(np.sum((b0 + b1 * g - a) ** 2))
        if sse < best_sse:
            best, best_sse = (b0, b1), sse
    return best


def _outer(resid, x0: list[float], lo: list[float], hi: list[float], max_nfev: int) -> tuple[Array, bool]:
    """Bounded least squares over the nonlinear parameters (nothing to do when all are held fixed)."""
    if not x0:
        return np.array([]), True
    x0 = np.clip(x0, lo, hi)
    res = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", max_nfev=max_nfev, **_TOL)
    return res.x, res.status > 0


def relu_projected(d: Array, a: Array, start: Array, encode, decode, max_nfev: int = 300,
                   fixed: dict[int, float] | None = None) -> tuple[Array, bool]:
    """Fit (alpha, s) with (A0, B) solved exactly; returns (alpha, b, c, A0) and whether it converged.

    ``fixed`` may hold alpha (index 0) and/or A0 (index 3) for profiling."""
    fixed = fixed or {}
    lx = np.log(d) - np.mean(np.log(d))
    q0 = encode(start)
    free = [i for i in (0, 2) if i not in fixed]
    a0_box = (fixed[3], fixed[3]) if 3 in fixed else (0.0, 1.0)

    def inner(x: Array) -> tuple[float, float, float, float, Array]:
        vals = {**{0: q0[0], 2: q0[2]}, **fixed, **dict(zip(free, x, strict=True))}
        al, s = vals[0], vals[2]
        g = np.exp(np.clip(-s * np.expm1(al * lx) / al, -700, 700))
        a0, amp = bounded_pair(g, a, (a0_box[0], 0.0), (a0_box[1], np.inf))
        return al, s, a0, amp, g

    def resid(x: Array) -> Array:
        _, _, a0, amp, g = inner(x)
        return a0 + amp * g - a

    lo, hi = {0: 1e-3, 2: 0.0}, {0: 10.0, 2: np.inf}
    x, ok = _outer(resid, [q0[i] for i in free], [lo[i] for i in free], [hi[i] for i in free], max_nfev)
    al, s, a0, amp, _ = inner(x)
    return decode(np.array([al, np.log(max(amp, 1e-300)), s, a0])), ok


def silu_projected(d: Array, a: Array, start: Array, max_nfev: int = 300,
                   fixed: dict[int, float] | None = None) -> tuple[Array, bool]:
    """Fit alpha with (c, A0) solved exactly; returns (alpha, c, A0) and whether it converged.

    ``fixed`` may hold alpha (index 0) and/or A0 (index 2) for profiling."""
    fixed = fixed or {}
    a0_box = (fixed[2], fixed[2]) if 2 in fixed else (0.0, 1.0)

    def inner(x: Array) -> tuple[float, float, float, Array]:
        al = fixed.get(0, x[0] if len(x) else start[0])
        g = -(d ** (-al))
        a0, c = bounded_pair(g, a, (a0_box[0], 0.0), (a0_box[1], np.inf))
        return al, a0, c, g

    def resid(x: Array) -> Array:
        _, a0, c, g = inner(x)
        return a0 + c * g - a

    x0 = [] if 0 in fixed else [start[0]]
    x, ok = _outer(resid, x0, [1e-3] * len(x0), [10.0] * len(x0), max_nfev)
    al, a0, c, _ = inner(x)
    return np.array([al, c, a0]), ok

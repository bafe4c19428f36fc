"""Law families: activation ratio A as a function of training tokens D (in billions).

The laws and baselines of docs/paper.md section 3, each a ``Law`` with named parameters, box bounds, an
analytic Jacobian and starting points from linearizations (so no curve needs hand-tuned starts):

- ``relu``: decreasing logspace power law ``A(D) = exp(-c * D^alpha + b) + A0``
- ``silu``: convergent increasing power law ``A(D) = -c * D^(-alpha) + A0``
- ``log``: logarithmic baseline ``A(D) = A0 + c * log(a * D + b)``
- ``sigmoid``: sigmoid-like baseline ``A(D) = a - 1 / (1 + b * exp(c * D + d))``

A new family registered with ``register_law`` works with ``fit_law``, ``fit_all`` and ``sparsinglaw fit``:

>>> import numpy as np
>>> from sparsinglaw.laws import Curve, Law, fit_law, register_law
>>> def expdecay(d, a0, c, k):
...     return a0 + c * np.exp(-k * d)
>>> def expdecay_jac(d, a0, c, k):
...     e = np.exp(-k * d)
...     return np.column_stack([np.ones_like(d), e, -c * d * e])
>>> _ = register_law(Law(
...     "expdecay", "A = A0 + c * exp(-k * D)", ("A0", "c", "k"), (0.0, -1.0, 0.0), (1.0, 1.0, 10.0),
...     expdecay, expdecay_jac, starts=lambda d, a: [np.array([a[-1], a[0] - a[-1], 1.0 / d.mean()])],
...     linearize=lambda d, a, p: Linearized(d, np.log(np.abs(a - p[0])), "D", "log|A - A0|"),
...     limit=lambda p: float(p[0]), limit_param="A0"))
>>> d = np.linspace(1, 50, 25)
>>> result = fit_law(Curve(d * 1e9, expdecay(d, 0.07, 0.05, 0.1), "toy"), "expdecay", interval="profile")
>>> round(result.params["A0"], 4), result.limit.identified
(0.07, True)
>>> _ = LAWS.unregister("expdecay")  # doctests share one process: leave the registry as found"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparsinglaw.errors import ConfigError
from sparsinglaw.laws.projection import relu_projected, silu_projected
from sparsinglaw.registry import Registry

Array = np.ndarray
_EXP_CLIP = 700.0


INF = float("inf")


def _exp(x: Array) -> Array:
    return np.exp(np.clip(x, -_EXP_CLIP, _EXP_CLIP))


@dataclass(frozen=True)
class Linearized:
    """A transformed view in which the law is a straight line (for plots)."""

    x: Array
    y: Array
    xlabel: str
    ylabel: str


@dataclass(frozen=True)
class Space:
    """Coordinates the solver works in (better conditioned than the published parameters).

    Parameters held fixed by profiling (alpha, A0) keep their index and value in these coordinates.
    """

    encode: Callable[[Array], Array]
    decode: Callable[[Array], Array]
    func: Callable[[Array], Array]
    jac: Callable[[Array], Array]
    lower: tuple[float, ...]
    upper: tuple[float, ...]


@dataclass(frozen=True)
class Law:
    """A registered law family with named parameters (see module docstring for the formulas)."""

    name: str
    formula: str
    param_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    func: Callable[..., Array]
    jac: Callable[..., Array]
    starts: Callable[[Array, Array], list[Array]]
    linearize: Callable[[Array, Array, Array], Linearized]
    limit: Callable[[Array], float | None]
    limit_param: str | None = None
    activation: str | None = None
    reparam: Callable[[Array], Space] | None = None
    project: Callable[..., tuple[Array, bool]] | None = None  # (d, a, start, max_nfev, fixed) -> (params, ok)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def __call__(self, d: Array, params: Array) -> Array:
        return self.func(np.asarray(d, dtype=float), *np.asarray(params, dtype=float))

    def index(self, param: str) -> int:
        if param not in self.param_names:
            raise ConfigError(f"law {self.name}: no parameter {param!r} (has {', '.join(self.param_names)})")
        return self.param_names.index(param)

    def space(self, d: Array) -> Space:
        """The solver's coordinates for the points ``d`` (identity unless the law reparametrizes)."""
        if self.reparam is not None:
            return self.reparam(d)
        return Space(lambda p: np.asarray(p, dtype=float), lambda q: np.asarray(q, dtype=float),
                     lambda q: self.func(d, *q), lambda q: self.jac(d, *q), self.lower, self.upper)

    def clip(self, params: Array) -> Array:
        """Project a starting point strictly inside the bounds."""
        lo, hi = np.array(self.lower), np.array(self.upper)
        span = np.where(np.isfinite(hi - lo), (hi - lo) * 1e-9, 1e-12)
        return np.clip(np.asarray(params, dtype=float), lo + span, hi - span)


def _linfit(x: Array, y: Array) -> tuple[Array, Array]:
    """Row-wise least-squares line y = intercept + slope * x (x has one candidate design per row)."""
    xm, ym = x.mean(axis=1, keepdims=True), y.mean(axis=-1, keepdims=True)
    var = np.sum((x - xm) ** 2, axis=1)
    slope = np.sum((x - xm) * (y - ym), axis=1) / np.where(var > 0, var, np.inf)
    return (ym - slope[:, None] * xm)[:, 0], slope


def _best(candidates: list[tuple[float, Array]], keep: int) -> list[Array]:
    finite = [(s, p) for s, p in candidates if np.isfinite(s) and np.all(np.isfinite(p))]
    finite.sort(key=lambda sp: sp[0])
    return [p for _, p in finite[:keep]]


# --- ReLU: A = exp(-c D^alpha + b) + A0 -------------------------------------------------------------

def _relu(d: Array, alpha: float, b: float, c: float, a0: float) -> Array:
    return _exp(-c * d**alpha + b) + a0


def _relu_jac(d: Array, alpha: float, b: float, c: float, a0: float) -> Array:
    p = d**alpha
    e = _exp(-c * p + b)
    return np.column_stack([-e * c * p * np.log(d), e, -e * p, np.ones_like(d)])


def _relu_space(d: Array) -> Space:
    """Box-Cox coordinates (alpha, m, s, A0) with x = D / D_ref (D_ref the geometric mean of D):
    ``-c D^alpha + b = m - s * (x^alpha - 1) / alpha``, so c = s / (alpha D_ref^alpha), b = m + s / alpha.
    As alpha -> 0 the curve tends smoothly to a power of D, which keeps the 0.1B fit well conditioned."""
    lx = np.log(d) - np.mean(np.log(d))
    dref = float(np.exp(np.mean(np.log(d))))

    def boxcox(al: float) -> tuple[Array, Array]:
        xa = np.exp(al * lx)
        return np.expm1(al * lx) / al, (xa * lx * al - (xa - 1.0)) / al**2

    def func(q: Array) -> Array:
        return _exp(q[1] - q[2] * boxcox(q[0])[0]) + q[3]

    def jac(q: Array) -> Array:
        bc, dbc = boxcox(q[0])
        e = _exp(q[1] - q[2] * bc)
        return np.column_stack([-e * q[2] * dbc, e, -e * bc, np.ones_like(lx)])

    def encode(p: Array) -> Array:
        cp = p[2] * dref ** p[0]
        return np.array([p[0], p[1] - cp, cp * p[0], p[3]])

    def decode(q: Array) -> Array:
        cp = q[2] / q[0]
        return np.array([q[0], q[1] + cp, cp / dref ** q[0], q[3]])

    return Space(encode, decode, func, jac, (1e-3, -INF, 0.0, 0.0), (10.0, INF, INF, 1.0))


def _relu_project(d: Array, a: Array, start: Array, max_nfev: int = 300,
                  fixed: dict[int, float] | None = None) -> tuple[Array, bool]:
    space = _relu_space(d)
    return relu_projected(d, a, start, space.encode, space.decode, max_nfev, fixed)


def _relu_starts(d: Array, a: Array) -> list[Array]:
    """For fixed (alpha, A0), log(A - A0) = b - c D^alpha is linear: scan a grid and keep the best."""
    alphas = np.geomspace(0.02, 4.0, 24)
    x = d[None, :] ** alphas[:, None]
    cands = []
    for frac in (0.0, 0.5, 0.8, 0.9, 0.95, 0.98):
        a0 = frac * a.min()
        b, slope = _linfit(x, np.log(np.clip(a - a0, 1e-12, None)))
        c = np.maximum(-slope, 1e-12)
        sse = np.sum((_exp(b[:, None] - c[:, None] * x) + a0 - a) ** 2, axis=1)
        cands += [(s, np.array([al, bi, ci, a0])) for s, al, bi, ci in zip(sse, alphas, b, c, strict=True)]
    return _best(cands, 4)


def _relu_lin(d: Array, a: Array, p: Array) -> Linearized:
    alpha, b, c, a0 = p
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.log(b - np.log(a - a0))
    return Linearized(np.log(d), y, "log D", "log(b - log(A - A0))  [= log c + alpha log D]")


# --- SiLU: A = -c D^-alpha + A0 ---------------------------------------------------------------------

def _silu(d: Array, alpha: float, c: float, a0: float) -> Array:
    return -c * d ** (-alpha) + a0


def _silu_jac(d: Array, alpha: float, c: float, a0: float) -> Array:
    p = d ** (-alpha)
    return np.column_stack([c * p * np.log(d), -p, np.ones_like(d)])


def _silu_starts(d: Array, a: Array) -> list[Array]:
    """For fixed alpha the SiLU law is linear in (c, A0)."""
    alphas = np.geomspace(0.01, 5.0, 40)
    x = -(d[None, :] ** (-alphas[:, None]))
    a0, c = _linfit(x, a)
    c, a0 = np.maximum(c, 0.0), np.clip(a0, 0.0, 1.0)
    sse = np.sum((a0[:, None] + c[:, None] * x - a) ** 2, axis=1)
    return _best([(s, np.array([al, ci, ai])) for s, al, ci, ai in zip(sse, alphas, c, a0, strict=True)], 3)


def _silu_lin(d: Array, a: Array, p: Array) -> Linearized:
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.log(p[2] - a)
    return Linearized(np.log(d), y, "log D", "log(A0 - A)  [= log c - alpha log D]")


# --- log baseline: A = A0 + c log(a D + b) -----------------------------------------------------------

def _log(d: Array, a0: float, c: float, a: float, b: float) -> Array:
    return a0 + c * np.log(np.clip(a * d + b, 1e-300, None))


def _log_jac(d: Array, a0: float, c: float, a: float, b: float) -> Array:
    u = np.clip(a * d + b, 1e-300, None)
    return np.column_stack([np.ones_like(d), np.log(u), c * d / u, c / u])


def _log_starts(d: Array, a: Array) -> list[Array]:
    """With a = 1 and a fixed offset b the law is linear in (A0, c)."""
    cands = []
    for b in np.geomspace(1e-3, 1e3, 25) * max(d.min(), 1e-9):
        x = np.column_stack([np.ones_like(d), np.log(d + b)])
        (a0, c), *_ = np.linalg.lstsq(x, a, rcond=None)
        p = np.array([a0, c, 1.0, b])
        cands.append((float(np.sum((_log(d, *p) - a) ** 2)), p))
    return _best(cands, 3)


def _log_lin(d: Array, a: Array, p: Array) -> Linearized:
    return Linearized(np.log(p[2] * d + p[3]), a, "log(a D + b)", "A")


# --- sigmoid-like baseline: A = a - 1 / (1 + b exp(c D + d)) -----------------------------------------

def _sig(x: Array, a: float, b: float, c: float, d: float) -> Array:
    return a - 1.0 / (1.0 + b * _exp(c * x + d))


def _sig_jac(x: Array, a: float, b: float, c: float, d: float) -> Array:
    e = _exp(c * x + d)
    g2 = (1.0 + b * e) ** 2
    return np.column_stack([np.ones_like(x), e / g2, b * e * x / g2, b * e / g2])


def _sig_starts(x: Array, y: Array) -> list[Array]:
    """For a fixed a, log(1/(a - A) - 1) = log b + c D (with d = 0) is linear."""
    cands = []
    margins = np.geomspace(1e-4, 0.5, 12)
    for a in np.concatenate([y.max() + margins, 1.0 + y.min() - margins]):
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.log(1.0 / (a - y) - 1.0)
        if not np.all(np.isfinite(z)):
            continue
        (lb, c), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), z, rcond=None)
        p = np.array([a, np.exp(np.clip(lb, -50, 50)), c, 0.0])
        cands.append((float(np.sum((_sig(x, *p) - y) ** 2)), p))
    return _best(cands, 3)


def _sig_lin(x: Array, y: Array, p: Array) -> Linearized:
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.log(1.0 / (p[0] - y) - 1.0)
    return Linearized(x, z, "D", "log(1/(a - A) - 1)  [= log b + c D + d]")


def _sig_limit(p: Array) -> float | None:
    a, b, c, _ = p
    if c > 0 and b > 0:
        return float(a)
    return float(a - 1.0) if c < 0 else float(a - 1.0 / (1.0 + b * np.exp(p[3])))


# Registration order is the order ``fit_all`` tries the laws in (sparsinglaw.registry rules).
LAWS: Registry[Law] = Registry("law")


def register_law(law: Law, *, replace: bool = False) -> Law:
    """Add a law family to the registry (``LAWS``), keyed by its name (``replace=True`` to override)."""
    return LAWS.register(law.name, law, replace=replace)


register_law(Law(
    "relu", "A = exp(-c * D^alpha + b) + A0", ("alpha", "b", "c", "A0"),
    (1e-3, -INF, 0.0, 0.0), (10.0, INF, INF, 1.0), _relu, _relu_jac, _relu_starts, _relu_lin,
    lambda p: float(p[3]), "A0", "relu", _relu_space, _relu_project))
register_law(Law(
    "silu", "A = -c * D^(-alpha) + A0", ("alpha", "c", "A0"),
    (1e-3, 0.0, 0.0), (10.0, INF, 1.0), _silu, _silu_jac, _silu_starts, _silu_lin,
    lambda p: float(p[2]), "A0", "silu", None, silu_projected))
register_law(Law(
    "log", "A = A0 + c * log(a * D + b)", ("A0", "c", "a", "b"),
    (-INF, -INF, 0.0, 1e-12), (INF, INF, INF, INF), _log, _log_jac, _log_starts, _log_lin,
    lambda p: None))
register_law(Law(
    "sigmoid", "A = a - 1 / (1 + b * exp(c * D + d))", ("a", "b", "c", "d"),
    (0.0, 0.0, -INF, -INF), (2.0, INF, INF, INF), _sig, _sig_jac, _sig_starts, _sig_lin, _sig_limit))

# Activation-function names that pick the paper's form (docs/paper.md section 3).
ACTIVATION_LAWS = {"relu": "relu", "relu2": "relu", "silu": "silu", "swish": "silu", "swiglu": "silu"}


def get_law(name: str) -> Law:
    """The registered law called ``name`` (ConfigError naming the choices otherwise)."""
    return LAWS.get(name.lower())


def law_for_activation(activation: str | None) -> Law | None:
    """The paper's law for a known activation function (``None`` if unknown)."""
    if not activation:
        return None
    key = ACTIVATION_LAWS.get(activation.lower())
    return LAWS[key] if key else None

"""PPL-p% on the trend (the default solution): the CETT where a smooth fit of the PPL ratio meets 1 + p/100.

Why. On a finite evaluation set the PPL ratio at CETT c is a smooth trend plus scatter: every sparse pass
moves hundreds of per-token losses by small amounts of either sign, and the net of those moves is fresh at
every c tried (SmolLM2-135M, 512 tokens: sd 0.0008-0.002 around the trend, as large as a 1e-3 tolerance;
benchmarks/ratio_noise.py). "The lowest c whose observed ratio is within tol" is then partly a draw: it
depends on where the search starts and on luck. The trend crossing is one well-defined number per data set,
estimated from every pass, and its uncertainty can be stated.

Model. ``log r(c) = exp(a + b (log c - x0))`` (``log r`` is a power of c, the search's model),
with slope ``b > 0`` so the trend is monotone. It is a *local* model: the measured log-log slope drifts with c
(about 2 far below SmolLM2's crossing, about 10 near it), so each pass's noise sd is inflated by
``exp(((log c_i - x*) / LOCAL_WIDTH)^2 / 2)`` around the current crossing x*, letting far passes steer but not
decide. A weak prior on b (PRIOR_SLOPE +- PRIOR_SLOPE_SD) makes one pass enough to propose the next.
Fitted by Levenberg-Marquardt, vectorized over bootstrap resamples.

Noise. One sd for every pass's ratio: its scatter around the trend *of the same tokens*, the only part of the
error that more passes reduce (the passes share their tokens; how the trend itself varies across token draws
is the interval's business). It comes from the per-sequence losses of the passes near the crossing, with each
sequence its own level and slope (``own_shape_noise``) or, for two close passes, its own level
(``rank1_noise``), pooled with a prior of 0.027 / sqrt(tokens) (the scatter measured on SmolLM2 at 512 and
2,048 tokens) worth PRIOR_DOF degrees of freedom. Measuring it over passes spread wider counts the
sequences' different trends, a sampling error, as scatter: on SmolLM2's 512-token slices a rank-1 fit over
passes 2%, 7% and 18% apart in c gave 0.0012, 0.0018 and 0.0026 where the same tokens' ratios scatter by
0.0011-0.0012 around their trend (28-30 CETT scans), and that inflated standard error cost passes.

Units. Every "sequence" below is a unit of resampling: the callers pass blocks of tokens
(``metrics.blocks``), so that one long sequence gives many units.

Stop. When the trend's standard error at the crossing, in PPL-ratio units, is at most the tolerance, with at
least two passes and the crossing within LOCAL_WIDTH of an evaluated CETT, *and* a pass within CONFIRM_WIDTH
of the crossing confirms it (``metrics.pplp_answer``: converged answers are never extrapolated), or, with
``self_confirm``, a pass reads the target within the tolerance where the trend is within it by its standard
error: that pass's CETT is then the answer (``TrendOutcome.answer``), its PPL ratio measured there. The
error is scaled by the passes' Birge ratio around the trend where it exceeds 1: the noise estimates above see only what sequences do not
share, and a PPL ratio that jumps for every sequence at once between nearby settings (SmolLM2's input CETT
near PPL-5%: sd 0.007 between CETTs 0.5% apart, 2,048 tokens) shows only as misfit. At the pass budget:
stop, warn, and give the evaluation size at which the standard error would reach the tolerance (it shrinks
as 1/sqrt(tokens)).

Interval: ``metrics.pplp_intervals``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sparsinglaw.metrics.pplp import C_MAX, C_MIN, C_START, FRESH_GAP
from sparsinglaw.metrics.pplp_answer import (
    below_one_warning,
    cett_label,
    confirmation,
    confirmation_warning,
    floored,
    non_monotone_warning,
    range_reason,
    saturation_reason,
    self_confirmation,
)
from sparsinglaw.metrics.pplp_noise import (  # noqa: F401 - the noise estimators, re-exported
    PAIR_WIDTH,
    PRIOR_DOF,
    PRIOR_NOISE,
    SHAPE_WIDTH,
    local_noise,
    own_shape_noise,
    pass_noise,
    rank1_noise,
)
from sparsinglaw.progress import search_reporter  # one INFO line per pass through the sparsinglaw logger

PRIOR_SLOPE, PRIOR_SLOPE_SD = 3.0, 3.0
PRIOR = (PRIOR_SLOPE, PRIOR_SLOPE_SD)  # the slope's prior (mean, sd) unless a search is given a measured one
SLOPE_RANGE = (0.2, 60.0)
LOCAL_WIDTH = 0.25  # in log c
MIN_SEQUENCES = 8
MISFIT_WARN = 2.0  # a Birge ratio above this says the scatter is not the sequences' (chi^2 with 1 dof: 16%)
MAX_STEP = math.log(8.0)  # a proposed CETT stays within a factor 8 of the nearest evaluated one
# Before the target is bracketed the next pass goes at least this far (log c) beyond the passes, toward the
# target: the fitted crossing, not a fixed factor (1.2 before: on SmolLM2 a first pass reading 1.0089 at CETT
# 0.05 sent the second to 0.06, reading 1.0165, where the crossing was 0.0514).
MIN_BEYOND = 2 * FRESH_GAP


@dataclass
class TrendFit:
    """The fitted trend and its crossing of ``log target``."""

    log_cett: float  # x*, the crossing
    slope: float
    se_ratio: float  # standard error of the trend at the crossing, PPL-ratio units (with noise_sd)
    noise_sd: float  # the ratio's sd around the trend used to weight the fit
    noise_source: str  # "pair", "pair (upper bound)" or "prior"
    target: float = 1.01  # the target PPL ratio 1 + p/100
    stop_se: float = math.inf  # se_ratio with the sd the stop rule trusts (a measured one or an upper bound)
    misfit: float = 1.0  # Birge ratio sqrt(chi^2 / dof) of the passes around the trend; se_ratio is scaled by it above 1

    @property
    def cett(self) -> float:
        return math.exp(self.log_cett)


@dataclass
class TrendOutcome:
    fit: TrendFit | None
    cetts: list[float] = field(default_factory=list)
    converged: bool = False
    warnings: list[str] = field(default_factory=list)
    no_answer: str | None = None  # why no setting meets the target (then no number is an answer)
    confirmation: dict | None = None  # the pass at the answer checked against the trend (``pplp_answer``)
    answer_pass: float | None = None  # the CETT of a pass that confirmed itself (``TrendSearch.self_confirm``)

    @property
    def answer(self) -> float:
        """The answer's CETT: the pass that confirmed itself, else the trend's crossing."""
        return self.fit.cett if self.answer_pass is None else self.answer_pass


def levenberg_marquardt(x: np.ndarray, log_r: np.ndarray, sigma: np.ndarray, x0: float, a0: np.ndarray,
                        iterations: int = 40, prior: tuple[float, float] = PRIOR) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``log_r[b, k] ~ exp(a + s (x[k] - x0))`` per row (weights 1/sigma^2, prior (mean, sd) on s): (a, s)
    per row."""
    dx = x - x0
    mean, sd = prior
    a, s = a0.astype(np.float64).copy(), np.full(len(log_r), mean)
    lam = np.full(len(log_r), 1e-2)

    def cost(a_, s_):
        f = np.exp(a_[:, None] + s_[:, None] * dx)
        return np.sum(((log_r - f) / sigma) ** 2, axis=1) + ((s_ - mean) / sd) ** 2

    current = cost(a, s)
    for _ in range(iterations):
        f = np.exp(a[:, None] + s[:, None] * dx)
        ja, js, res = f / sigma, f * dx / sigma, (log_r - f) / sigma
        haa, hab = np.sum(ja * ja, 1), np.sum(ja * js, 1)
        hss = np.sum(js * js, 1) + sd**-2
        ga, gs = np.sum(ja * res, 1), np.sum(js * res, 1) - (s - mean) / sd**2
        daa, dss = haa * (1 + lam) + 1e-12, hss * (1 + lam)
        det = daa * dss - hab * hab
        da = np.clip((dss * ga - hab * gs) / det, -3, 3)
        ds = np.clip((daa * gs - hab * ga) / det, -10, 10)
        a_new, s_new = a + da, np.clip(s + ds, *SLOPE_RANGE)
        trial = cost(a_new, s_new)
        better = trial < current
        a, s = np.where(better, a_new, a), np.where(better, s_new, s)
        current = np.where(better, trial, current)
        lam = np.where(better, lam / 3, lam * 4)
    return a, s


def _covariance(x: np.ndarray, sigma: np.ndarray, x0: float, a: float, s: float,
                prior: tuple[float, float] = PRIOR) -> np.ndarray:
    """Gauss-Newton covariance of (a, s) at the fit (prior included)."""
    f = np.exp(a + s * (x - x0))
    jac = np.stack([f / sigma, f * (x - x0) / sigma], axis=1)
    return np.linalg.inv(jac.T @ jac + np.diag([1e-12, prior[1] ** -2]))


def _start(x: np.ndarray, log_r: np.ndarray, log_target: float) -> tuple[float, np.ndarray]:
    """Centre x0 (the pass whose ratio is nearest the target) and each row's starting a there."""
    nearest = int(np.argmin(np.abs(log_r.mean(axis=0) - log_target)))
    return float(x[nearest]), np.log(np.maximum(log_r[:, nearest], log_target * 1e-3))


def fit_rows(x: np.ndarray, log_r: np.ndarray, sigma: np.ndarray, log_target: float,
             prior: tuple[float, float] = PRIOR):
    """Crossing x* of every row of ``log_r`` (B, K), and the (a, s, x0) fitted to each."""
    x0, a0 = _start(x, log_r, log_target)
    a, s = levenberg_marquardt(x, log_r, sigma, x0, a0, prior=prior)
    return x0 + (math.log(log_target) - a) / s, a, s, x0


def local_sigma(x: np.ndarray, noise_sd: float, target: float, x_star: float) -> np.ndarray:
    """Each pass's sd in log-ratio units, inflated away from the crossing (the model is local). The width
    grows to 1.5 times the distance to the nearest pass, so the nearest passes always count in full."""
    width = max(LOCAL_WIDTH, 1.5 * float(np.min(np.abs(x - x_star))))
    return noise_sd / target * np.exp(0.5 * ((x - x_star) / width) ** 2)


def fit_trend(cetts: list[float], log_r: np.ndarray, noise_sd: float, noise_source: str, target: float,
              prior: tuple[float, float] = PRIOR) -> TrendFit:
    """The trend through the passes so far: the crossing and the standard error there (``prior``: the slope's
    mean and sd)."""
    x, log_target = np.log(np.asarray(cetts, dtype=np.float64)), math.log(target)
    x_star = float(x[int(np.argmin(np.abs(log_r - log_target)))])
    for _ in range(3):  # the local weights depend on the crossing they help find
        sigma = local_sigma(x, noise_sd, target, x_star)
        xs, a, s, x0 = fit_rows(x, log_r[None, :], sigma, log_target, prior)
        x_star = float(np.clip(xs[0], math.log(C_MIN) - MAX_STEP, math.log(C_MAX) + MAX_STEP))
    cov = _covariance(x, sigma, x0, float(a[0]), float(s[0]), prior)
    gradient = log_target * np.array([1.0, x_star - x0])  # d(log r)/d(a, s) at the crossing
    misfit = _birge_ratio(x, log_r, sigma, x0, float(a[0]), float(s[0]))
    se = target * math.sqrt(max(float(gradient @ cov @ gradient), 0.0)) * max(misfit, 1.0)
    return TrendFit(x_star, float(s[0]), se, noise_sd, noise_source, target, misfit=misfit)


def _birge_ratio(x: np.ndarray, log_r: np.ndarray, sigma: np.ndarray, x0: float, a: float, s: float) -> float:
    """sqrt(chi^2 / dof) of the fit (1 with no degree of freedom left). Above 1 the passes depart from the
    local power law by more than their noise, and the standard error is scaled by it (the Particle Data
    Group's rule for inconsistent measurements). Why: the model's covariance alone trusts the model. On
    SmolLM2's input CETT at p = 5 the log-log slope falls from about 6 to 3 across the passes 0.05, 0.09 and
    0.14; the fit put the crossing at 0.075 with a standard error of 0.0006, and a pass there measured 1.040
    against the target 1.05."""
    dof = len(x) - 2
    if dof < 1:
        return 1.0
    residual = (log_r - np.exp(a + s * (x - x0))) / sigma
    return math.sqrt(float(np.sum(residual**2)) / dof)


def _propose(fit: TrendFit, cetts: list[float], log_r: np.ndarray) -> float:
    """The next CETT: the fitted crossing, kept on the unexplored side while the target is not bracketed
    (MIN_BEYOND to a factor 8 beyond the passes, 4 up while every ratio is within 2 sd of 1), and FRESH_GAP
    from every evaluated CETT (a CETT that close repeats much of its neighbour's noise)."""
    x, log_target = np.log(np.asarray(cetts)), math.log(fit.target)
    step = fit.log_cett
    if np.all(log_r < log_target):  # not reached yet: go up
        buried = np.max(log_r) <= 2 * fit.noise_sd / fit.target
        step = x.max() + math.log(4.0) if buried else float(np.clip(step, x.max() + MIN_BEYOND, x.max() + MAX_STEP))
    elif np.all(log_r >= log_target):  # reached already: go down
        step = float(np.clip(step, x.min() - MAX_STEP, x.min() - MIN_BEYOND))
    else:
        nearest = float(x[np.argmin(np.abs(x - step))])
        step = float(np.clip(step, nearest - MAX_STEP, nearest + MAX_STEP))
    return math.exp(_fresh(float(np.clip(step, math.log(C_MIN), math.log(C_MAX))), x))


def _fresh(target: float, x: np.ndarray) -> float:
    """The point nearest ``target`` (log c) at least FRESH_GAP from every evaluated log c, inside the range."""
    for k in range(0, 800):
        candidate = target + ((k + 1) // 2) * FRESH_GAP * (1 if k % 2 else -1)
        inside = math.log(C_MIN) <= candidate <= math.log(C_MAX)
        if inside and np.all(np.abs(x - candidate) >= FRESH_GAP * 0.999):
            return candidate
    return target


@dataclass
class TrendSearch:
    """The trend search over per-sequence losses: ``evaluate(c)`` runs a sparse pass and returns its
    per-sequence summed NLLs, aligned with ``dense_nll`` and ``tokens``."""

    dense_nll: np.ndarray
    tokens: np.ndarray
    p: float
    tol: float
    max_passes: int
    start: float = C_START
    sparse_nll: list[np.ndarray] = field(default_factory=list)
    cetts: list[float] = field(default_factory=list)
    label: Callable[[float], str] = cett_label  # how a searched c reads to the user ("CETT 0.05", "sparsity 0.4")
    prior: tuple[float, float] = PRIOR  # the slope's (mean, sd): a weak default, or one a cheaper search measured
    self_confirm: bool = False  # a pass reading the target within tol, where the trend agrees, is an answer

    @property
    def target(self) -> float:
        return 1 + self.p / 100

    def log_ratios(self) -> np.ndarray:
        total = float(np.sum(self.tokens))
        return np.array([float(np.sum(s - self.dense_nll)) / total for s in self.sparse_nll])

    def ratios(self) -> np.ndarray:
        return np.exp(self.log_ratios())

    def fit(self) -> TrendFit:
        """The trend through the passes, those at or below 1 floored (``pplp_answer.floored``); while no pass
        reads above 1, a placeholder a factor 4 above the passes that the stop rule never trusts."""
        log_r = self.log_ratios()
        noise, trusted, source = pass_noise(self.tokens, self.dense_nll, self.sparse_nll, self.cetts, self.target, log_r)
        if not np.any(log_r > 0):
            top = float(np.log(self.cetts).max()) + math.log(4.0)
            return TrendFit(top, self.prior[0], math.inf, noise, source, self.target)
        fit = fit_trend(self.cetts, floored(log_r, self.target), noise, source, self.target, self.prior)
        # Every pass shares one sd, so the standard error scales with it (up to the weak slope prior).
        fit.stop_se = fit.se_ratio * trusted / noise
        return fit

    def run(self, evaluate: Callable[[float], np.ndarray], confirm: bool = True,
            on_pass: Callable[[TrendSearch, TrendFit], None] | None = None) -> TrendOutcome:
        """Passes until the answer is confirmed, shown to be impossible, or the budget is spent.

        Converged means: the stop rule holds (the trend's standard error at the crossing is at most the
        tolerance) *and* a pass within CONFIRM_WIDTH of the crossing reads what the trend says there, within
        the tolerance (``pplp_answer.confirmation``). While the rule holds with no pass that close, the next
        pass is made at the answer; one that departs from the trend widens the standard error (misfit) and the
        search goes on. ``confirm=False`` trusts the rule alone (kept for replays of the older searches).
        ``on_pass(search, fit)`` is called after every pass (progress). Passes already in ``cetts`` and
        ``sparse_nll`` (a search carried over to more units, ``metrics.pplp_subset``) count as made: the search
        goes on from them."""
        out = TrendOutcome(fit=None, cetts=self.cetts)
        c = self._next(out, confirm) if self.cetts else self.start  # passes given up front: resume from them
        while c is not None and len(self.cetts) < self.max_passes:
            self.cetts.append(c)
            self.sparse_nll.append(np.asarray(evaluate(c), dtype=np.float64))
            out.fit = None
            c = self._next(out, confirm)
            if on_pass is not None:
                on_pass(self, out.fit)
        if out.fit is None:
            out.fit = self.fit()
        self._finish(out)
        return out

    def _next(self, out: TrendOutcome, confirm: bool) -> float | None:
        """The CETT of the next pass given the passes so far, or None when the search is done (converged, or
        no answer); fills ``out``'s fit, confirmation and verdict."""
        out.fit = self.fit()
        out.no_answer = saturation_reason(self.cetts, self.ratios(), self.target, self.label)
        if out.no_answer:
            return None
        if self._rule_holds(out.fit):
            out.confirmation = self._confirmation(out.fit)
            if not confirm or (out.confirmation is not None and out.confirmation["confirmed"]):
                out.converged = True
                return None
            own = self._self_confirmation(out.fit) if self.self_confirm else None
            if own is not None:  # a pass that reads the target, where the trend agrees: the answer is that pass
                out.confirmation, out.answer_pass, out.converged = own, own["cett"], True
                return None
            inside = range_reason(out.fit.log_cett, self.target) is None
            if out.confirmation is None and inside:  # the answer is CONFIRM_WIDTH from every pass: pass there
                return math.exp(out.fit.log_cett)
        return _propose(out.fit, self.cetts, self.log_ratios())

    def _confirmation(self, fit: TrendFit) -> dict | None:
        return confirmation(self.cetts, self.ratios(), fit.log_cett, fit.slope, self.target, self.tol, self.label)

    def _self_confirmation(self, fit: TrendFit) -> dict | None:
        return self_confirmation(self.cetts, self.ratios(), fit.log_cett, fit.slope, self.target, self.tol,
                                 fit.stop_se, self.label)

    def _finish(self, out: TrendOutcome) -> None:
        """The outcome's reason for no answer, its warnings, and the final confirmation."""
        if not out.converged and not out.no_answer:
            out.no_answer = range_reason(out.fit.log_cett, self.target, self.label)
        if not out.converged and not out.no_answer and not math.isfinite(out.fit.se_ratio):
            top = max(self.cetts)
            out.no_answer = (f"no answer: no pass reads a PPL ratio above 1 in {len(self.cetts)} sparse passes "
                             f"(the largest setting tried, {self.label(top)}, reads "
                             f"{float(self.ratios()[self.cetts.index(top)]):.4f}), so there is no trend to cross "
                             f"{self.target:.4f}")
        if out.no_answer:
            out.warnings.append(out.no_answer)
            return
        if not out.converged:
            out.confirmation = self._confirmation(out.fit)
            out.warnings.append(self.budget_warning(out.fit, out.confirmation))
        ratios = self.ratios()
        for warning in (below_one_warning(self.cetts, ratios, self.label),
                        non_monotone_warning(self.cetts, ratios, out.fit.noise_sd, self.label)):
            if warning:
                out.warnings.append(warning)

    def nearest_pass(self, log_c: float) -> tuple[int, float]:
        """(index, distance in log c) of the evaluated CETT nearest ``log_c``."""
        gaps = np.abs(np.log(self.cetts) - log_c)
        i = int(np.argmin(gaps))
        return i, float(gaps[i])

    def _rule_holds(self, fit: TrendFit) -> bool:
        """The stop rule: two passes or more, the crossing within LOCAL_WIDTH of one, its error within tol."""
        near = self.nearest_pass(fit.log_cett)[1] <= LOCAL_WIDTH
        return len(self.cetts) >= 2 and near and fit.stop_se <= self.tol

    def budget_warning(self, fit: TrendFit, check: dict | None = None) -> str:
        if math.isfinite(fit.stop_se) and fit.stop_se <= self.tol and len(self.cetts) >= 2:
            return (f"not converged after {len(self.cetts)} sparse passes (max_sparse_passes): the trend's standard "
                    f"error {fit.stop_se:.2g} is within the tolerance but " + confirmation_warning(check, self.tol))
        head = (f"the trend's standard error at the crossing is {fit.se_ratio:.2g} after {len(self.cetts)} sparse "
                f"passes (max_sparse_passes), above the tolerance {self.tol:g}; ")
        if fit.misfit > MISFIT_WARN:
            return head + (f"the passes scatter around the trend {fit.misfit:.1f}x more than the sequences' noise "
                           "explains (the PPL ratio jumps between nearby settings), so more passes or a looser "
                           "tolerance would resolve it; more evaluation tokens may not")
        tokens = float(np.sum(self.tokens))
        needed = float(f"{tokens * (fit.se_ratio / self.tol) ** 2:.2g}")
        return head + (f"about {needed:,.0f} evaluation tokens (it shrinks as 1/sqrt(tokens)), more passes or a "
                       "looser tolerance would resolve it")


def run_trend_search(dense_nll: np.ndarray, tokens: np.ndarray, losses_at: Callable[[float], np.ndarray], *,
                     p: float, tolerance: float, max_passes: int, start: float, what: str,
                     label: Callable[[float], str] | None = None, prior: tuple[float, float] = PRIOR,
                     self_confirm: bool = False) -> tuple[TrendSearch, TrendOutcome]:
    """The one PPL-p% trend search every caller runs (a target's PPL-p%, its subset search on big
    evaluations, a calibrated tracking CETT): ``losses_at(c)`` runs the sparse pass(es) at c and returns NLLs
    aligned with ``dense_nll`` / ``tokens`` (per block of tokens, ``metrics.blocks``, or per sequence); one
    progress line per pass, named ``what``. ``prior`` and ``self_confirm``: as ``TrendSearch``'s."""
    search = TrendSearch(dense_nll, tokens, p, tolerance, max_passes, start, label=label or cett_label,
                         prior=prior, self_confirm=self_confirm)
    return search, search.run(losses_at, on_pass=search_reporter(what, max_passes))


def interpolate_in_log_c(cetts: list[float], values: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    """Values (..., K) known at ``cetts`` read at ``log_c`` (...,) linearly in log c, the end segments
    extended beyond the evaluated range (activation ratio is smooth and monotone in c)."""
    order = np.argsort(cetts)
    x, v = np.log(np.asarray(cetts))[order], np.asarray(values, dtype=np.float64)[..., order]
    if len(x) == 1:
        return np.broadcast_to(v[..., 0], np.shape(log_c)).copy()
    i = np.clip(np.searchsorted(x, log_c) - 1, 0, len(x) - 2)
    frac = (log_c - x[i]) / (x[i + 1] - x[i])
    lo = np.take_along_axis(v, np.asarray(i)[..., None], -1)[..., 0] if v.ndim > 1 else v[i]
    hi = np.take_along_axis(v, np.asarray(i + 1)[..., None], -1)[..., 0] if v.ndim > 1 else v[i + 1]
    return lo + frac * (hi - lo)


__all__ = ["MIN_SEQUENCES", "TrendFit", "TrendOutcome", "TrendSearch", "fit_trend", "interpolate_in_log_c",
           "pass_noise", "run_trend_search"]

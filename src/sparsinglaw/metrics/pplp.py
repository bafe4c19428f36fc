"""PPL-p% (docs/paper.md section 2): the CETT at which perplexity rises by exactly p%, and its activation ratio.

Search. The published procedure bisects c in [0, 1], re-solving all thresholds and running a dense and a
sparse pass at every step (about 20 passes). Here thresholds for any c come from the dense pass's
statistics, and only sparse passes are spent on c. log(PPL ratio) grows roughly like a power of c, so we
search x = log c for the root of f = log(log ratio) - log(log target) by regula falsi with the Illinois
modification (falling back to bisection in x where the ratio is <= 1), after a bracketing phase whose
steps come from the same power-law model. Tolerance is in PPL-ratio terms: |ratio - target| <= tol.
A bracket narrower than 2 FRESH_GAP across which the ratio jumps more steeply than any trend is noise: CETTs
inside it share much of its ends' noise, so the search tries fresh CETTs just below it instead (on simulated
ratios whose noise is shared within 0.3% of CETT, benchmarks/sim_pplp_search.py, this raised the share of
searches landing within 1e-3 in 12 passes from 90.9-99.8% to 97.4-100%).

Which solution. On small evaluation sets the ratio is not monotone in c (SmolLM2 on 512 tokens shows ratios
1.0113, 1.0055, 1.0203 at c = 0.040, 0.050, 0.055), so several c can meet the target. We report the
*lowest observed crossing*: the bracket is always [largest evaluated c below hi with ratio < target,
smallest evaluated c with ratio >= target], so the search converges on the smallest c seen to reach the
target (the conservative choice). Non-monotone pairs among evaluated points are reported as warnings.

Uncertainty. Per-sequence losses and activity counts of every pass are kept; resampling sequences with
replacement gives, for each resample, ratio(c) at every evaluated c, the lowest crossing by linear
interpolation, and the activation ratio there: a percentile interval with no extra forward passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

C_START, C_MIN, C_MAX = 0.05, 1e-5, 1.0
# CETTs this close (relative) give nearly the same thresholds, so their PPL ratios are not independent draws
# of the noise around the trend (scans 0.15-0.3% apart were; SmolLM2, 512 tokens).
FRESH_GAP = 0.003


@dataclass
class SearchPoint:
    cett: float
    ppl_ratio: float
    activation_ratio: float


@dataclass
class SearchOutcome:
    solution_index: int | None  # index into ``points`` of the reported solution
    points: list[SearchPoint] = field(default_factory=list)
    converged: bool = False
    warnings: list[str] = field(default_factory=list)


def _bracket(points: list[SearchPoint], target: float) -> tuple[SearchPoint | None, SearchPoint | None]:
    above = [q for q in points if q.ppl_ratio >= target]
    hi = min(above, key=lambda q: q.cett) if above else None
    below = [q for q in points if q.ppl_ratio < target and (hi is None or q.cett < hi.cett)]
    lo = max(below, key=lambda q: q.cett) if below else None
    return lo, hi


def _model_step(point: SearchPoint, target: float, going_up: bool) -> float:
    """Next c from log ratio ~ c^2, clamped to a factor in [1.2, 8] in the right direction (the lower clamp
    trades landing on the target for bracketing it; 1.2 took fewer passes than 1.5 in simulated searches on
    ratio(c) maps measured on SmolLM2: 4.3 vs 4.5 on average over 3 data sets x 6 starts)."""
    if point.ppl_ratio > 1.0:
        factor = math.sqrt(math.log(target) / math.log(point.ppl_ratio))
    else:
        factor = 4.0 if going_up else 0.25
    factor = min(max(factor, 1.2), 8.0) if going_up else min(max(factor, 1 / 8), 1 / 1.2)
    return min(max(point.cett * factor, C_MIN), C_MAX)


def _falsi(lo: SearchPoint, hi: SearchPoint, target: float, weights: tuple[float, float]) -> float:
    """Illinois regula falsi step in (log c, log log ratio); bisection in log c if lo's ratio <= 1."""
    x0, x1 = math.log(lo.cett), math.log(hi.cett)
    if lo.ppl_ratio <= 1.0 or hi.ppl_ratio <= 1.0:
        return math.exp((x0 + x1) / 2)
    f0 = (math.log(math.log(lo.ppl_ratio)) - math.log(math.log(target))) * weights[0]
    f1 = (math.log(math.log(hi.ppl_ratio)) - math.log(math.log(target))) * weights[1]
    x = x1 - f1 * (x1 - x0) / (f1 - f0) if f1 != f0 else (x0 + x1) / 2
    # Keep strictly inside the bracket, away from the ends, so every step shrinks it.
    margin = 0.02 * (x1 - x0)
    return math.exp(min(max(x, x0 + margin), x1 - margin))


def search(evaluate: Callable[[float], SearchPoint], p: float, tol: float, max_passes: int,
           start: float = C_START) -> SearchOutcome:
    """Find the lowest observed CETT whose PPL ratio is within ``tol`` of ``1 + p/100``."""
    target = 1 + p / 100
    out = SearchOutcome(solution_index=None)

    def run(c: float) -> SearchPoint:
        point = evaluate(c)
        out.points.append(point)
        return point

    point = run(start)
    weights, last_kept = [1.0, 1.0], None
    while len(out.points) < max_passes:
        lo, hi = _bracket(out.points, target)
        if _acceptable(point, hi, target, tol):
            break
        if hi is None:  # never reached the target yet: go up
            if lo.cett >= C_MAX:
                out.warnings.append(f"PPL ratio {lo.ppl_ratio:.4f} at CETT 1 stays below {target:.4f}")
                break
            point = run(_model_step(lo, target, going_up=True))
        elif lo is None:  # reached it already at the smallest c: go down
            if hi.cett <= C_MIN:
                out.warnings.append(f"PPL ratio already {hi.ppl_ratio:.4f} >= {target:.4f} at CETT {C_MIN}")
                break
            point = run(_model_step(hi, target, going_up=False))
        elif _noise_straddled(lo, hi):
            # The ratio jumps across the target within a bracket too narrow to hold a CETT whose ratio is a
            # fresh draw of the noise (CETTs closer than FRESH_GAP give nearly the same thresholds): try just
            # below lo, where the trend is as close to the target, rather than shrink the bracket to nothing.
            point = run(_fresh_below(lo.cett, out.points))
        else:
            if hi.cett / lo.cett - 1 < 1e-4:
                out.warnings.append("bracket narrower than 1e-4 relative before reaching the tolerance")
                break
            point = run(_falsi(lo, hi, target, tuple(weights)))
            kept = "lo" if point.ppl_ratio >= target else "hi"
            # Illinois: an end kept twice in a row has its function value halved, avoiding stagnation.
            weights = [1.0, 1.0] if kept != last_kept else ([weights[0] / 2, 1.0] if kept == "lo" else [1.0, weights[1] / 2])
            last_kept = kept
    _finish(out, target, tol)
    return out


def _noise_straddled(lo: SearchPoint, hi: SearchPoint) -> bool:
    """lo and hi closer than 2 FRESH_GAP with a log-log slope no smooth trend has (> 20; measured trends on
    SmolLM2 reach about 10 near the crossing): their ratios differ by noise, not by the trend."""
    width = math.log(hi.cett / lo.cett)
    if width >= 2 * FRESH_GAP or lo.ppl_ratio <= 1.0:
        return False
    return math.log(math.log(hi.ppl_ratio) / math.log(lo.ppl_ratio)) > 20 * width


def _fresh_below(c: float, points: list[SearchPoint]) -> float:
    """The largest CETT below ``c`` at least FRESH_GAP (relative) away from every evaluated one."""
    while any(abs(math.log(c / q.cett)) < FRESH_GAP * 0.999 for q in points):
        c *= math.exp(-FRESH_GAP)
    return max(c, C_MIN)


def _acceptable(point: SearchPoint, hi: SearchPoint | None, target: float, tol: float) -> bool:
    """Within tolerance, and no evaluated smaller CETT already reached the target (lowest crossing)."""
    return abs(point.ppl_ratio - target) <= tol and (hi is None or hi.cett >= point.cett)


def _finish(out: SearchOutcome, target: float, tol: float) -> None:
    _, hi = _bracket(out.points, target)
    within = [i for i, q in enumerate(out.points) if _acceptable(q, hi, target, tol)]
    if within:
        # The acceptable point nearest the lowest crossing (largest CETT not above it).
        out.solution_index = max(within, key=lambda i: out.points[i].cett)
        out.converged = True
    elif hi is not None:
        out.solution_index = out.points.index(hi)
        out.warnings.append(
            f"did not reach |ratio - {target:.4f}| <= {tol:g} in {len(out.points)} sparse passes; "
            f"reporting the lowest CETT seen above the target (ratio {hi.ppl_ratio:.4f})"
        )
    out.warnings.extend(monotonicity_warnings(out.points))


def monotonicity_warnings(points: list[SearchPoint], slack: float = 0.0) -> list[str]:
    """Pairs of evaluated CETTs where a larger c gave a lower PPL ratio."""
    ordered = sorted(points, key=lambda q: q.cett)
    pairs = [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :] if b.ppl_ratio < a.ppl_ratio - slack]
    if not pairs:
        return []
    a, b = pairs[0]
    return [
        f"PPL ratio is not monotone in CETT on this data ({len(pairs)} pair(s), e.g. {a.ppl_ratio:.4f} at "
        f"{a.cett:.4g} but {b.ppl_ratio:.4f} at {b.cett:.4g}); several CETTs meet the target, the lowest "
        "observed crossing is reported; use more evaluation tokens to narrow the interval"
    ]


def lowest_crossings(c: np.ndarray, ratio: np.ndarray, act: np.ndarray, target: float):
    """Per resample (a row of ``ratio`` and ``act`` over the sorted CETTs ``c``): the lowest crossing of
    ``target`` interpolated between evaluated CETTs, the activation ratio there, and the share of rows that
    do not cross inside the passes."""
    above = ratio >= target
    has = above.any(axis=1)
    first = np.where(has, above.argmax(axis=1), len(c) - 1)
    prev = np.maximum(first - 1, 0)
    rows = np.arange(len(ratio))
    r0, r1 = ratio[rows, prev], ratio[rows, first]
    c0, c1 = c[prev], c[first]
    inside = (first > 0) & has & (r1 > r0)
    # Interpolate in (log c, log log ratio), where log ratio ~ k c^beta is a straight line (the search's
    # model); plain linear interpolation where a ratio is <= 1.
    power = inside & (r0 > 1) & (c0 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        y0, y1 = np.log(np.log(np.where(power, r0, 2.0))), np.log(np.log(np.where(power, r1, 3.0)))
        frac_log = (np.log(np.log(target)) - y0) / (y1 - y0)
        frac_lin = (target - r0) / np.where(r1 > r0, r1 - r0, 1.0)
    frac = np.clip(np.where(inside, np.where(power, frac_log, frac_lin), 1.0), 0.0, 1.0)
    log_c = np.log(np.maximum(c0, 1e-30)) + frac * (np.log(np.maximum(c1, 1e-30)) - np.log(np.maximum(c0, 1e-30)))
    crossing_c = np.where(power, np.exp(log_c), c0 + frac * (c1 - c0))
    # Activation ratio moves with the crossing's position in c between the two evaluated points.
    frac = np.where(c1 > c0, (crossing_c - c0) / np.where(c1 > c0, c1 - c0, 1.0), frac)
    crossing_a = act[rows, prev] + frac * (act[rows, first] - act[rows, prev])
    censored = np.mean(~has | (first == 0))
    return crossing_c, crossing_a, censored


# Pairs of evaluated CETTs used to estimate the ratio's scatter: at least FRESH_GAP apart (closer ones share
# part of the noise: 0.002% apart moved the ratio by 0.0002 where 0.3% moved it by up to 0.0022) and at most
# NOISE_PAIR_MAX apart (farther ones add each sequence's own trend: on the benchmark's slice, pairs 0.3-1.5%
# apart gave 0.0006-0.0013, pairs 6-7% apart 0.0023; benchmarks/ratio_noise.py has the per-sequence moves).
NOISE_PAIR_MAX = 0.03


def ratio_noise(tokens: np.ndarray, sparse_nll: list[np.ndarray], cetts: list[float], target: float,
                max_gap: float = NOISE_PAIR_MAX) -> dict | None:
    """Standard deviation of the PPL ratio around its trend in c, from the per-sequence losses of the two
    evaluated CETTs closest together (between FRESH_GAP and ``max_gap`` apart in log c); None without such a pair.

    The ratio's noise is the net of many small per-token loss moves of either sign (benchmarks/ratio_noise.py),
    so the net move between two CETTs has variance N v for a per-token variance v, estimated from how each
    sequence's move departs from its share of the mean move. Each ratio carries half that variance."""
    n = len(tokens)
    pairs = [(abs(math.log(b / a)), i, k) for (i, a), (k, b) in combinations(enumerate(cetts), 2) if min(a, b) > 0]
    usable = [pair for pair in pairs if FRESH_GAP * 0.999 <= pair[0] <= max_gap]
    if n < 2 or not usable:
        return None
    _, i, k = min(usable)
    move = np.asarray(sparse_nll[k], dtype=np.float64) - np.asarray(sparse_nll[i], dtype=np.float64)
    counts = np.asarray(tokens, dtype=np.float64)
    total = counts.sum()
    per_token_var = float(np.sum((move - counts * move.sum() / total) ** 2 / counts) / (n - 1))
    sd = target * math.sqrt(per_token_var / total / 2)
    return {"sd": sd, "cetts": sorted([float(cetts[i]), float(cetts[k])]), "sequences": n, "tokens": int(total)}


def noise_warning(noise: dict | None, tol: float) -> str | None:
    """A warning when the ratio scatters by more than half the tolerance (a pass at the exact solution then
    lands within it less than 95% of the time), with the evaluation size that would bring it to tol / 2."""
    if noise is None or noise["sd"] <= tol / 2:
        return None
    landing = math.erf(tol / (noise["sd"] * math.sqrt(2)))  # P(|N(0, sd)| <= tol)
    needed = float(f"{noise['tokens'] * (2 * noise['sd'] / tol) ** 2:.2g}")
    a, b = noise["cetts"]
    return (f"the PPL ratio scatters by about {noise['sd']:.2g} (sd) around its trend on these {noise['tokens']:,} "
            f"tokens (per-sequence losses at CETT {a:.4g} and {b:.4g}), more than half the tolerance {tol:g}: a pass "
            f"at the solution lands within it only about {landing:.0%} of the time, so the search may need extra "
            f"sparse passes; about {needed:,.0f} evaluation tokens (the scatter shrinks as 1/sqrt(tokens)) or a "
            "looser tolerance would resolve it")

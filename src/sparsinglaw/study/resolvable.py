"""Checks a small budget can resolve: the paper's architecture and scale findings read at equal training
tokens (or equal tokens per parameter) instead of through fitted limits.

Deeper models are sparser at the same tokens, and models of different sizes sit at similar ratios at the
same tokens per parameter (docs/paper.md section 4). Each verdict is on an interval carried from the
per-checkpoint intervals: measurement noise, not seed-to-seed variation."""

from __future__ import annotations

import numpy as np
from scipy import stats

from sparsinglaw.study.verdicts import SIMILAR_ACROSS_SIZES, after_warmup, side_verdict, verdict_row

BOOTSTRAP_DRAWS = 2000


def _at(cell, tokens: int, level: float) -> tuple[float, float] | None:
    """(activation ratio, its standard deviation) at the checkpoint ``tokens``, from its interval."""
    value = dict(cell.points).get(tokens)
    iv = cell.intervals.get(tokens)
    if value is None or iv is None:
        return None
    return value, (iv[1] - iv[0]) / (2 * stats.norm.ppf(0.5 + level / 2))


def _slope_interval(x: np.ndarray, values: np.ndarray, sds: np.ndarray, level: float) -> tuple[float, float, float]:
    """Least-squares slope of values on x, with the percentile interval of its parametric bootstrap."""
    rng = np.random.default_rng(0)
    draws = values + rng.normal(size=(BOOTSTRAP_DRAWS, len(values))) * sds
    xc = x - x.mean()
    slopes = draws @ xc / (xc @ xc)
    lo, hi = np.quantile(slopes, [0.5 - level / 2, 0.5 + level / 2])
    return float(values @ xc / (xc @ xc)), float(lo), float(hi)


def widthdepth_at_equal_tokens(analysis) -> list[dict]:
    """Deeper is sparser (A rises with r = d / L below the bottleneck near r = 114): the slope of the last
    checkpoint's activation ratio against r across a width-depth group trained on the same tokens."""
    out, level = [], analysis.spec.level
    by_name = {c.name: c for c in analysis.cells}
    for group in analysis.widthdepth:
        cells = [by_name[r["cell"]] for r in group["rows"] if r["cell"] in by_name]
        claim = (f"{group['activation']}: at equal tokens ({group['tokens']:.3g}), the activation ratio rises with "
                 f"the width-depth ratio (r = {cells[0].ratio:.3g}-{cells[-1].ratio:.3g})")
        paper = "A rises with r below r = 114 (deeper is sparser)"
        last = [(c, _at(c, c.points[-1][0], level)) if c.points else (c, None) for c in cells]
        if len(last) < 2 or any(v is None for _, v in last):
            out.append(verdict_row(claim, paper, "no interval at the last checkpoint of every model", "inconclusive"))
            continue
        r = np.array([c.ratio for c, _ in last])
        values, sds = np.array([v[0] for _, v in last]), np.array([v[1] for _, v in last])
        slope, lo, hi = _slope_interval(r, values, sds, level)
        found = (f"A {', '.join(f'{a:.3f}' for a in values)} at r = {', '.join(f'{x:.3g}' for x in r)}; slope of "
                 f"A vs r {slope:.3g}, {level:.0%} interval [{lo:.3g}, {hi:.3g}] (measurement noise only)")
        out.append(verdict_row(claim, paper, found, side_verdict(lo, hi, +1)))
    return out


def _scale_pairs(analysis) -> list[tuple[str, object, object]]:
    """(activation, smallest, largest) model of each activation and width-depth ratio with two sizes."""
    groups: dict[tuple, list] = {}
    for c in analysis.cells:
        groups.setdefault((c.activation, round(c.target_ratio or c.ratio, 6)), []).append(c)
    return [(act, min(cs, key=lambda c: c.n_params), max(cs, key=lambda c: c.n_params))
            for (act, _), cs in groups.items() if len({c.n_params for c in cs}) >= 2]


def _nearest(cell, tokens: float) -> int:
    return min((t for t, _ in cell.points), key=lambda t: abs(np.log(t / tokens)))


def sizes_at_equal_tokens_per_param(analysis) -> list[dict]:
    """Similar activation ratios across sizes: the two sizes' ratios compared at the largest tokens per
    parameter both reached (each at its checkpoint nearest it), the difference within SIMILAR_ACROSS_SIZES."""
    out, level = [], analysis.spec.level
    for act, small, large in _scale_pairs(analysis):
        claim = (f"{act}: sizes N = {small.n_params:.2g} and {large.n_params:.2g} have similar activation ratios "
                 "at equal tokens per parameter")
        paper = f"A0 within about {SIMILAR_ACROSS_SIZES} across 0.1B-2.4B"
        tpp = min(small.points[-1][0] / small.n_params, large.points[-1][0] / large.n_params)
        ts, tl = _nearest(small, tpp * small.n_params), _nearest(large, tpp * large.n_params)
        a, b = _at(small, ts, level), _at(large, tl, level)
        if a is None or b is None:
            out.append(verdict_row(claim, paper, "no interval at the compared checkpoints", "inconclusive"))
            continue
        diff, sd = b[0] - a[0], float(np.hypot(a[1], b[1]))
        z = stats.norm.ppf(0.5 + level / 2)
        lo, hi, tol = diff - z * sd, diff + z * sd, SIMILAR_ACROSS_SIZES
        found = (f"at {tpp:.3g} tokens per parameter: A {a[0]:.3f} (small, {ts:.3g} tokens) vs {b[0]:.3f} (large, "
                 f"{tl:.3g} tokens); difference {diff:+.3f}, {level:.0%} interval [{lo:.3f}, {hi:.3f}]")
        verdict = "agrees" if -tol <= lo and hi <= tol else "disagrees" if lo > tol or hi < -tol else "inconclusive"
        out.append(verdict_row(claim, paper, found, verdict))
    return out


def _late_slope(cell, skip_fraction: float, tokens_limit: float) -> tuple[float, float, int] | None:
    """Slope of A vs ln D over the second half of the checkpoints after warmup up to ``tokens_limit``,
    with its standard error and degrees of freedom."""
    pts = [p for p in after_warmup(cell.points, skip_fraction) if p[0] <= tokens_limit * 1.0001]
    pts = pts[len(pts) // 2:]
    if len(pts) < 3:
        return None
    res = stats.linregress(np.log([p[0] for p in pts]), [p[1] for p in pts])
    return float(res.slope), float(res.stderr), len(pts) - 2


def smaller_converges_faster(analysis) -> list[dict]:
    """Smaller models converge faster: at the same training tokens, the smaller model's activation ratio
    moves less (|slope of A vs ln D| over the late checkpoints) than the larger one's."""
    out, level = [], analysis.spec.level
    for act, small, large in _scale_pairs(analysis):
        claim = f"{act}: the smaller model (N = {small.n_params:.2g}) converges faster than N = {large.n_params:.2g}"
        paper = "smaller models converge faster"
        common = min(small.points[-1][0], large.points[-1][0])
        s, g = _late_slope(small, analysis.spec.skip_fraction, common), _late_slope(large, analysis.spec.skip_fraction, common)
        if s is None or g is None:
            out.append(verdict_row(claim, paper, "too few late checkpoints", "inconclusive"))
            continue
        # |large| - |small| > 0 means the small one has flattened more; the sign is taken at the estimates
        diff = abs(g[0]) - abs(s[0])
        half = stats.t.ppf(0.5 + level / 2, min(s[2], g[2])) * float(np.hypot(s[1], g[1]))
        found = (f"late slopes of A vs ln D up to {common:.3g} tokens: small {s[0]:.3g}, large {g[0]:.3g}; "
                 f"|large| - |small| = {diff:.3g}, {level:.0%} interval [{diff - half:.3g}, {diff + half:.3g}]")
        out.append(verdict_row(claim, paper, found, side_verdict(diff - half, diff + half, +1)))
    return out


def resolvable_checks(analysis) -> list[dict]:
    """Every check of this module, in the report's order."""
    return (widthdepth_at_equal_tokens(analysis) + sizes_at_equal_tokens_per_param(analysis)
            + smaller_converges_faster(analysis))

"""Do a study's trends agree with the paper's (docs/paper.md sections 3-4), within their intervals?

Each check gives one of three verdicts, never more than the intervals support:
``agrees`` (the interval lies on the paper's side), ``disagrees`` (it lies on the other side) or
``inconclusive`` (the interval straddles, or the quantity is not identified / not measured).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from sparsinglaw.laws.predict import tokens_to_identify
from sparsinglaw.study.fit import fit_options
from sparsinglaw.study.resolvable import resolvable_checks
from sparsinglaw.study.verdicts import SIMILAR_ACROSS_SIZES, after_warmup, side_verdict, verdict_row

# Published limits across scales (docs/paper.md section 3), widened by the fitting uncertainty it reports.
PAPER_LIMITS = {"relu": (0.0614, 0.0782), "silu": (0.382, 0.409)}
PAPER_SLACK = 0.017
DIRECTION = {"relu": -1, "silu": +1}  # ReLU: A falls with tokens; SiLU: A rises


def trend_interval(points: list[tuple[int, float]], level: float, skip_fraction: float) -> tuple[float, float] | None:
    """Interval of the slope of A against log(tokens) (least squares, t interval), warmup dropped."""
    pts = points[int(np.floor(skip_fraction * len(points))):]
    if len(pts) < 3:
        return None
    x, y = np.log([p[0] for p in pts]), np.array([p[1] for p in pts], float)
    res = stats.linregress(x, y)
    if not np.isfinite(res.stderr):
        return None
    t = stats.t.ppf(0.5 + level / 2, len(pts) - 2)
    return float(res.slope - t * res.stderr), float(res.slope + t * res.stderr)


def trend_checks(analysis, quantity: str = "activation ratio") -> list[dict]:
    out, lvl = [], analysis.spec.level
    for cell in analysis.cells:
        sign = DIRECTION.get("relu" if cell.activation in ("relu", "relu2") else cell.activation)
        if sign is None:
            continue
        word = "decreases" if sign < 0 else "increases"
        claim = f"{cell.name}: {quantity} {word} with training tokens"
        iv = trend_interval(cell.points, lvl, analysis.spec.skip_fraction)
        if iv is None:
            out.append(verdict_row(claim, word, "too few checkpoints", "inconclusive"))
            continue
        pts = after_warmup(cell.points, analysis.spec.skip_fraction)
        found = (f"A {pts[0][1]:.3f} -> {pts[-1][1]:.3f} over {len(pts)} checkpoints after warmup; "
                 f"slope of A vs ln D in [{iv[0]:.3g}, {iv[1]:.3g}] ({lvl:.0%})")
        found += population_note(cell, pts[0][0], pts[-1][0], lvl, analysis.spec.skip_fraction)
        found += decay_note(cell, pts) + constant_rate_note(cell, pts, lvl)
        verdict = side_verdict(iv[0], iv[1], sign)
        if verdict == "inconclusive" and (budget := resolving_budget(iv, cell.tokens_budget)) is not None:
            found += f"; resolves at about {budget:.2g} tokens if the slope and scatter hold"
        out.append(verdict_row(claim, word, found, verdict))
    return out


def population_note(cell, first: int, last: int, level: float, skip_fraction: float) -> str:
    """How much of the change in A between two checkpoints comes from neurons dying or reviving, and how
    much from live neurons: with dead share d and live-neuron ratio l, A = (1 - d) l (dead neurons are active
    on < 0.1% of tokens), so A1 - A0 = (d0 - d1) l1 + (1 - d0)(l1 - l0) exactly. "" where not recorded."""
    dead, live = dict(cell.dead), dict(cell.live)
    if not all(t in dead and t in live for t in (first, last)):
        return ""
    d0, d1, l0, l1 = dead[first], dead[last], live[first], live[last]
    moved = "revive" if d1 < d0 else "die"
    note = (f"; dead neurons {d0:.3f} -> {d1:.3f} ({abs(d0 - d1):.1%} of neurons {moved}); over live neurons "
            f"A {l0:.3f} -> {l1:.3f}")
    live_iv = trend_interval(cell.live, level, skip_fraction)
    if live_iv is not None:
        note += f" (slope in [{live_iv[0]:.3g}, {live_iv[1]:.3g}])"
    return note + (f"; of the change in A, {(d0 - d1) * l1:+.3f} comes from neurons that {moved} and "
                   f"{(1 - d0) * (l1 - l0):+.3f} from live neurons")


def decay_note(cell, pts: list) -> str:
    """Which of the judged checkpoints fall in the learning-rate decay (they are used: the schedule's share
    is measured by the constant-rate ablation, benchmarks/RESULTS.md)."""
    if cell.decay_start is None:
        return ""
    n = sum(t > cell.decay_start for t, _ in pts)
    return f"; {n} of them in the learning-rate decay (after {cell.decay_start:.3g} tokens), used"


def constant_rate_note(cell, pts: list, level: float) -> str:
    """The schedule's share of a trend: the slope before the learning-rate decay alone, and how far A moves
    during the decay. "" with no decay among the judged checkpoints or fewer than 3 before it."""
    if cell.decay_start is None:
        return ""
    before = [p for p in pts if p[0] <= cell.decay_start]
    if len(before) == len(pts) or (iv := trend_interval(before, level, 0.0)) is None:
        return ""
    return (f"; over the {len(before)} before the decay alone the slope is in [{iv[0]:.3g}, {iv[1]:.3g}], "
            f"and across the decay A moves {before[-1][1]:.3f} -> {pts[-1][1]:.3f}")


def resolving_budget(iv: tuple[float, float], tokens: int) -> float | None:
    """Tokens at which the slope interval would exclude 0, extrapolated: with checkpoints at the same spacing
    the interval's half-width falls like 1/sqrt(checkpoints), so like 1/sqrt(tokens) (a rough guide: it
    ignores the growing ln D range, which narrows it faster). None when the estimate is 0."""
    mid, half = (iv[0] + iv[1]) / 2, (iv[1] - iv[0]) / 2
    if mid == 0 or half <= 0:
        return None
    return float(tokens) * max(1.0, (half / abs(mid)) ** 2)


def _pairs(analysis) -> list[tuple[str, object, object]]:
    """(shape label, ReLU cell, SiLU cell) for every shape and budget trained with both activations."""
    by_shape: dict[tuple, dict[str, object]] = {}
    for c in analysis.cells:
        by_shape.setdefault((c.hidden_size, c.num_layers, c.tokens_budget), {})[c.activation] = c
    return [(f"{d}x{layers}", acts["relu"], acts["silu"]) for (d, layers, _), acts in by_shape.items()
            if "relu" in acts and "silu" in acts]


def relu_below_silu_per_checkpoint(analysis) -> list[dict]:
    """ReLU's tracked activation ratio below SiLU's at every checkpoint after warmup: disjoint intervals
    (each checkpoint's interval from resampling validation sequences) where both were recorded."""
    out = []
    for label, relu, silu in _pairs(analysis):
        claim = f"{label}: ReLU sparser than SiLU at every checkpoint after warmup"
        common = sorted(set(dict(relu.points)) & set(dict(silu.points)))
        common = after_warmup(common, analysis.spec.skip_fraction)
        if not common:
            out.append(verdict_row(claim, "ReLU below SiLU", "no common checkpoints", "inconclusive"))
            continue
        r, s = dict(relu.points), dict(silu.points)
        with_iv = all(t in relu.intervals and t in silu.intervals for t in common)
        if with_iv:
            below = sum(relu.intervals[t][1] < silu.intervals[t][0] for t in common)
            above = sum(relu.intervals[t][0] > silu.intervals[t][1] for t in common)
            gap = min(silu.intervals[t][0] - relu.intervals[t][1] for t in common)
            found = (f"intervals disjoint at {below} of {len(common)} checkpoints (smallest gap {gap:.3f}); "
                     f"ReLU {min(r[t] for t in common):.3f}-{max(r[t] for t in common):.3f}, "
                     f"SiLU {min(s[t] for t in common):.3f}-{max(s[t] for t in common):.3f}")
        else:
            below = sum(r[t] < s[t] for t in common)
            above = sum(r[t] > s[t] for t in common)
            found = (f"ReLU below SiLU at {below} of {len(common)} checkpoints (points only: no per-checkpoint "
                     "intervals recorded)")
        verdict = "agrees" if below == len(common) else "disagrees" if above == len(common) else "inconclusive"
        out.append(verdict_row(claim, "ReLU below SiLU", found, verdict))
    return out


def _limit_iv(analysis, name: str) -> tuple[float, float] | None:
    fit = analysis.fits.get(name)
    if fit is None or fit.limit is None or not fit.limit.identified or fit.limit.interval is None:
        return None
    return fit.limit.interval.low, fit.limit.interval.high


def _identify_budget(analysis, name: str) -> str:
    """Why the limit is not identified, and the token budget at which it would be (laws.predict)."""
    fit = analysis.fits.get(name)
    if fit is None or fit.d is None or fit.limit is None:
        return ""
    return f" ({fit.limit.reason}); {tokens_to_identify(fit, fit_options(analysis.spec)).describe()}"


def limit_checks(analysis) -> list[dict]:
    out = []
    for cell in analysis.cells:
        act = "relu" if cell.activation in ("relu", "relu2") else cell.activation
        if act not in PAPER_LIMITS:
            continue
        lo, hi = PAPER_LIMITS[act]
        paper = f"A0 in [{lo - PAPER_SLACK:.3f}, {hi + PAPER_SLACK:.3f}]"
        iv = _limit_iv(analysis, cell.name)
        claim = f"{cell.name}: limit activation ratio A0 as published for {act}"
        pts = after_warmup(cell.points, analysis.spec.skip_fraction)
        fitted = f" (law fitted on the {len(pts)} checkpoints after warmup{decay_note(cell, pts)})" if pts else ""
        if iv is None:
            out.append(verdict_row(claim, paper, "limit not identified" + _identify_budget(analysis, cell.name)
                                   + fitted, "inconclusive"))
            continue
        overlap = iv[0] <= hi + PAPER_SLACK and iv[1] >= lo - PAPER_SLACK
        out.append(verdict_row(claim, paper, f"A0 in [{iv[0]:.3f}, {iv[1]:.3f}]{fitted}",
                               "agrees" if overlap else "disagrees"))
    return out


def relu_below_silu(analysis) -> list[dict]:
    out = []
    by_shape: dict[tuple, dict[str, str]] = {}
    for c in analysis.cells:
        by_shape.setdefault((c.hidden_size, c.num_layers, c.tokens_budget), {})[c.activation] = c.name
    for (d, layers, _), names in by_shape.items():
        if "relu" not in names or "silu" not in names:
            continue
        claim = f"{d}x{layers}: ReLU's limit is below SiLU's"
        relu, silu = _limit_iv(analysis, names["relu"]), _limit_iv(analysis, names["silu"])
        if relu is None or silu is None:
            out.append(verdict_row(claim, "about 0.07 vs 0.39", "a limit is not identified", "inconclusive"))
            continue
        found = f"ReLU [{relu[0]:.3f}, {relu[1]:.3f}], SiLU [{silu[0]:.3f}, {silu[1]:.3f}]"
        verdict = "agrees" if relu[1] < silu[0] else "disagrees" if relu[0] > silu[1] else "inconclusive"
        out.append(verdict_row(claim, "about 0.07 vs 0.39", found, verdict))
    return out


def deeper_sparser(analysis) -> list[dict]:
    out = []
    for group in analysis.widthdepth:
        rows = group["rows"]
        low, high = rows[0], rows[-1]
        claim = f"{group['activation']}: deeper (r={low['ratio']:.3g}) is sparser than wider (r={high['ratio']:.3g})"
        paper = "A0 rises with r below r = 114"
        if not (low["identified"] and high["identified"]):
            out.append(verdict_row(claim, paper, "a limit is not identified", "inconclusive"))
            continue
        found = f"[{low['low']:.3f}, {low['high']:.3f}] vs [{high['low']:.3f}, {high['high']:.3f}]"
        if hinge := group.get("hinge"):  # the bottleneck where A0 stops rising with r (4+ identified limits)
            lo, hi = hinge.get("low"), hinge.get("high")
            where = f" [{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else " (no interval)"
            found += f"; hinge: bottleneck r = {hinge['bottleneck']:.3g}{where}, slope below it {hinge['slope']:.3g}"
        verdict = "agrees" if low["high"] < high["low"] else "disagrees" if low["low"] > high["high"] else "inconclusive"
        out.append(verdict_row(claim, paper, found, verdict))
    return out


def limits_across_sizes(analysis) -> list[dict]:
    """The limit barely depends on size: the difference of the smallest and largest model's A0, bounded by
    their intervals, within SIMILAR_ACROSS_SIZES (agrees) or beyond it (disagrees)."""
    out = []
    for group in analysis.scale:
        models = group["models"]
        small, large = models[0], models[-1]
        claim = (f"{group['activation']}: the limit is similar across sizes "
                 f"(N = {small['n_params']:.2g} vs {large['n_params']:.2g})")
        paper = f"A0 within about {SIMILAR_ACROSS_SIZES} across 0.1B-2.4B"
        if not (small["identified"] and large["identified"]):
            out.append(verdict_row(claim, paper, "a limit is not identified", "inconclusive"))
            continue
        lo, hi = large["low"] - small["high"], large["high"] - small["low"]  # the difference's bounds
        found = (f"[{small['low']:.3f}, {small['high']:.3f}] vs [{large['low']:.3f}, {large['high']:.3f}]: "
                 f"difference in [{lo:.3f}, {hi:.3f}]")
        tol = SIMILAR_ACROSS_SIZES
        verdict = "agrees" if -tol <= lo and hi <= tol else "disagrees" if lo > tol or hi < -tol else "inconclusive"
        out.append(verdict_row(claim, paper, found, verdict))
    return out


def summarize(checks: list[dict], level: float, what: str = "trends") -> tuple[dict[str, int], str]:
    """Counts of each verdict and the one-sentence summary of ``checks``."""
    counts = {v: sum(c["verdict"] == v for c in checks) for v in ("agrees", "disagrees", "inconclusive")}
    lvl = f"{level:.0%}"
    if not checks:
        summary = f"No {what} of the paper could be checked on these runs."
    elif counts["agrees"] == len(checks):
        summary = f"All {len(checks)} checked {what} agree with the paper's within their {lvl} intervals."
    else:
        summary = (f"Of {len(checks)} checked {what}, {counts['agrees']} agree with the paper's within their "
                   f"{lvl} intervals, {counts['disagrees']} disagree and {counts['inconclusive']} are "
                   "inconclusive (intervals too wide or limits not identified).")
    return counts, summary


# What a check rests on. "trend": the measured curves at the budget trained (slopes, per-checkpoint gaps,
# comparisons at equal tokens or tokens per parameter), which a small budget can resolve. "limit": the fitted
# law's limit A0, which needs the curve to bend toward it: at small budgets it is often not identified, and
# each such check then says at about what budget it would be (laws.predict.tokens_to_identify).
CHECK_KINDS = ("trend", "limit")


def _tagged(checks: list[dict], kind: str) -> list[dict]:
    return [{**c, "kind": kind} for c in checks]


def grouped_summary(checks: list[dict], level: float) -> tuple[dict[str, dict[str, int]], str]:
    """Counts per kind of check and one summary: the trend checks first, then the limit-based ones."""
    by_kind, sentences = {}, []
    for kind, what in zip(CHECK_KINDS, ("trends", "limit-based findings")):
        group = [c for c in checks if c.get("kind", "trend") == kind]
        if group or kind == "trend":
            by_kind[kind], sentence = summarize(group, level, what)
            sentences.append(sentence)
    tail = " Tiny models trained on few tokens need not reproduce the paper's findings."
    return by_kind, " ".join(sentences) + ("" if all(v["agrees"] == sum(v.values()) for v in by_kind.values())
                                           else tail)


def compare_inputs(inputs) -> dict[str, Any]:
    """Does input sparsity (the kept share of projection inputs) follow the paper's trends of output
    sparsity? The same checks on the input analysis, less the published limits (the paper has none for it)."""
    checks = (trend_checks(inputs, "kept input share") + relu_below_silu_per_checkpoint(inputs)
              + relu_below_silu(inputs) + deeper_sparser(inputs))
    counts, summary = summarize(checks, inputs.spec.level)
    return {"checks": checks, "counts": counts,
            "summary": f"Input sparsity (kept share of projection inputs, checked against the paper's output-"
                       f"sparsity trends): {summary}"}


def compare_with_paper(analysis) -> dict[str, Any]:
    checks = (_tagged(trend_checks(analysis) + relu_below_silu_per_checkpoint(analysis)
                      + resolvable_checks(analysis), "trend")
              + _tagged(relu_below_silu(analysis) + deeper_sparser(analysis) + limits_across_sizes(analysis)
                        + limit_checks(analysis), "limit"))
    counts, _ = summarize(checks, analysis.spec.level)
    by_kind, summary = grouped_summary(checks, analysis.spec.level)
    doc: dict[str, Any] = {"checks": checks, "counts": counts, "counts_by_kind": by_kind, "summary": summary}
    if getattr(analysis, "inputs", None) is not None:
        doc["inputs"] = compare_inputs(analysis.inputs)
    return doc

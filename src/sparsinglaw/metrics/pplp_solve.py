"""Solving PPL-p% on a ``Measurement`` (docs/paper.md section 2): the answer in the FFN target's result. The
trend search and the answer's interval are the engine's, as every target's (``targets.engine``).

Two definitions of the answer (``MeasureConfig.solution``):

- ``trend`` (default, ``metrics.pplp_trend``): the CETT where a monotone fit of the PPL ratio against CETT,
  over every pass, meets 1 + p/100; the search stops when the trend's standard error there is at most the
  tolerance. The activation ratio is read at that CETT: measured when a pass lies within FRESH_GAP of it,
  else interpolated in log c between the passes around it (the result says which, and how far).
- ``lowest-crossing`` (``metrics.pplp.search``): the lowest evaluated CETT whose own PPL ratio is within the
  tolerance of the target, the finite-sample definition closest to the published procedure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sparsinglaw.metrics.base import Solved
from sparsinglaw.metrics.pplp import (
    FRESH_GAP,
    SearchPoint,
    noise_warning,
    ratio_noise,
    search,
)
from sparsinglaw.metrics.pplp_subset import SubsetSearch, use_subsets
from sparsinglaw.metrics.pplp_trend import interpolate_in_log_c

if TYPE_CHECKING:
    from sparsinglaw.metrics.evaluation import Evaluation, TrendAnswer
    from sparsinglaw.metrics.evaluation import MeasurementView as Measurement
    from sparsinglaw.results import MeasureResult


@dataclass
class PPLPSolved(Solved):
    """What a PPL-p% solve leaves for the result: the evaluation the per-layer table comes from (the pass
    nearest the answer), every evaluation, and the facts ``finish`` writes into the result."""

    evaluations: list = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    def finish(self, result: MeasureResult, measurement: Measurement) -> None:
        cfg, facts = measurement.config, self.facts
        result.metric = "pplp"
        result.setting = {"p": cfg.p, "cett": facts["cett"], "tolerance": cfg.tolerance, "solution": cfg.solution}
        result.search, result.interval, result.ratio_noise = facts["points"], facts["interval"], facts["ratio_noise"]
        result.solution = facts.get("solution")
        result.warnings.extend(facts["warnings"])
        if facts["cett"] is None:  # no answer: no thresholds to apply, whatever the last pass used
            for layer in result.layers:
                layer.threshold = None
        elif cfg.solution == "trend":
            _read_at_answer(result, measurement, self.evaluations, facts["cett"])
        censored = (result.interval or {}).get("censored_fraction", 0.0)
        if censored > 0.2:
            result.warnings.append(
                f"{censored:.0%} of bootstrap resamples cross the target outside the evaluated CETTs; the "
                "interval is a lower bound on the uncertainty")


def _cett_of(evaluation: Evaluation) -> float:
    return float(evaluation.applied.setting["cett"])


def _read_at_answer(result: MeasureResult, measurement: Measurement, evaluations: list[Evaluation], c: float) -> None:
    """Activation ratios (overall and per FFN) and thresholds at the answer CETT c."""
    cetts = [_cett_of(e) for e in evaluations]
    x = math.log(c)
    result.ppl_ratio = float(result.solution["ppl_ratio"])  # at the answer (measured there, or interpolated)
    result.sparse_ppl = result.dense_ppl * result.ppl_ratio
    result.activation_ratio = float(interpolate_in_log_c(cetts, np.array([e.activity.activation_ratio for e in evaluations]), np.array(x)))
    per_layer = np.array([e.activity.layer_ratios() for e in evaluations]).T  # (layers, K)
    ratios = interpolate_in_log_c(cetts, per_layer, np.full(len(per_layer), x))
    thresholds = measurement.curves.thresholds(c)
    for layer, ratio, t in zip(result.layers, ratios, thresholds):
        layer.activation_ratio, layer.threshold = float(np.clip(ratio, 0.0, 1.0)), t


def activation_source(cetts: list[float], c: float) -> dict:
    """Whether the activation ratio at c is measured (a pass within FRESH_GAP) or interpolated, and how far."""
    x = np.log(np.asarray(cetts))
    gaps = np.abs(x - math.log(c))
    nearest = int(np.argmin(gaps))
    if gaps[nearest] <= FRESH_GAP:
        return {"activation": "measured", "passes": [cetts[nearest]], "distance": float(gaps[nearest])}
    below, above = x[x < math.log(c)], x[x > math.log(c)]
    if len(below) and len(above):
        pair = [float(np.exp(below.max())), float(np.exp(above.min()))]
        how = "interpolated"
    else:
        ends = np.sort(x)[:2] if not len(below) else np.sort(x)[-2:]
        pair, how = [float(v) for v in np.exp(ends)], "extrapolated"
    return {"activation": how, "passes": pair, "distance": float(gaps[nearest])}


def solve(measurement: Measurement) -> PPLPSolved:
    """PPL-p% on ``measurement`` by its config's ``solution`` definition."""
    measurement.dense(cett_curves=True)
    if measurement.config.solution == "trend":
        return _solve_trend(measurement)
    return _solve_lowest_crossing(measurement)


def _solve_trend(measurement: Measurement) -> PPLPSolved:
    cfg, data = measurement.config, measurement.data
    if use_subsets(data.n_sequences, data.seq_len):  # big evaluations: passes on a subset, one on all
        return _solve_trend_on_subsets(measurement)
    found = measurement.trend_search(lambda c: measurement.at("cett", c), p=cfg.p, tolerance=cfg.tolerance,
                                     max_passes=cfg.max_sparse_passes, start=cfg.start_cett,
                                     what="PPL-p% search", self_confirm=True,
                                     interval=(cfg.level, cfg.n_boot, cfg.seed))
    return _trend_solved(measurement, found, _points_and_noise(measurement, found.passes))


def _solve_trend_on_subsets(measurement: Measurement) -> PPLPSolved:
    """``_solve_trend`` on a big evaluation (``metrics.pplp_subset``): a search on a subset of the sequences
    gives the start; the answer, its PPL ratio, activation ratio and interval are the search's on every
    sequence."""
    cfg = measurement.config
    subset = SubsetSearch(measurement).run()
    search = subset.search
    found = measurement.answered(search, subset.outcome, subset.full, *subset.block_activity(), cfg.level,
                                 cfg.n_boot, cfg.seed)
    facts = {"points": _subset_points(subset),
             "ratio_noise": ratio_noise(search.tokens, search.sparse_nll, search.cetts, search.target)}
    return _trend_solved(measurement, found, facts, subset=subset.subset)


def _trend_solved(measurement: Measurement, found: TrendAnswer, facts: dict, **extra) -> PPLPSolved:
    """A finished trend search (``metrics.evaluation.TrendAnswer``, from ``targets.engine``) as the result's
    facts: with no answer, no CETT and the last pass's table; else the answer, where it comes from, and its
    PPL and activation ratios, the table from the pass nearest it. ``extra``: more keys of the solution (the
    subset search's)."""
    outcome, passes = found.outcome, found.passes
    facts.update(converged=outcome.converged, warnings=found.warnings, interval=found.interval)
    if found.no_answer:  # never a number: no CETT, no thresholds, the passes kept for the record
        facts.update(cett=None, solution=found.no_answer_solution("cett", **extra))
        # A subset's search with no answer made no pass on every sequence: one at its last CETT gives the table.
        last = passes[-1] if passes else measurement.at("cett", found.search.cetts[-1])
        return PPLPSolved(last, passes, facts)
    c, fit, cetts = found.cett, outcome.fit, [_cett_of(e) for e in passes]
    # Where the answer comes from: the trend's crossing, or a pass that read the target within the tolerance
    # where the trend agreed (``TrendSearch.self_confirm``); the crossing is given either way.
    own = "pass within the tolerance" if outcome.answer_pass is not None else "trend crossing"
    facts.update(cett=c, solution={
        "method": "trend", "cett": c, "answer": own, "crossing": fit.cett, "standard_error": fit.se_ratio,
        "stop_standard_error": fit.stop_se, "slope": fit.slope, "noise_sd": fit.noise_sd,
        "noise_source": fit.noise_source, "sparse_passes": len(found.search.cetts), "converged": outcome.converged,
        "confirmation": outcome.confirmation, **extra, **activation_source(cetts, c),
        **ppl_ratio_at(found, np.array([measurement.ppl_ratio(e) for e in passes]), c)})
    return PPLPSolved(passes[found.search.nearest_pass(math.log(c))[0]], passes, facts)


def _subset_points(found) -> list[dict]:
    """Every pass as a search point, with the sequences it ran on (its PPL and activation ratios are theirs)."""
    passes, points = found.passes, []
    for k, c in enumerate(passes.cetts):
        rows = len(passes.nll[k])
        activation = float(passes.active[k].sum() / max(passes.slots[k].sum(), 1e-30))
        points.append({"cett": float(c), "ppl_ratio": passes.ratio(c, found.dense), "activation_ratio": activation,
                       "sequences": rows})
    return points


def ppl_ratio_at(found: TrendAnswer, ratios: np.ndarray, c: float) -> dict:
    """The PPL ratio reported at the answer c: the pass at it (within CONFIRM_WIDTH, ``TrendAnswer.pass_at``:
    measured), else the passes' ratios interpolated in log c (labelled so; the answer is then not converged
    either)."""
    cetts, i = found.search.cetts, found.pass_at(c)
    if i is not None:
        return {"ppl_ratio": float(ratios[i]), "ppl_ratio_source": "measured", "ppl_ratio_cett": float(cetts[i])}
    value = float(interpolate_in_log_c(cetts, np.asarray(ratios), np.array(math.log(c))))
    return {"ppl_ratio": value, "ppl_ratio_source": "interpolated", "ppl_ratio_cett": c}


def _points_and_noise(measurement: Measurement, evaluations: list[Evaluation]) -> dict:
    target = 1 + measurement.config.p / 100
    points = [SearchPoint(_cett_of(e), measurement.ppl_ratio(e), e.activity.activation_ratio) for e in evaluations]
    noise = ratio_noise(measurement.dense_losses.tokens.numpy(), [e.losses.nll.numpy() for e in evaluations],
                        [_cett_of(e) for e in evaluations], target)
    return {"points": [asdict(q) for q in points], "ratio_noise": noise}


def _solve_lowest_crossing(measurement: Measurement) -> PPLPSolved:
    cfg = measurement.config
    evaluations: list[Evaluation] = []

    def point(c: float) -> SearchPoint:
        evaluation = measurement.at("cett", c)
        evaluations.append(evaluation)
        return SearchPoint(c, measurement.ppl_ratio(evaluation), evaluation.activity.activation_ratio)

    outcome = search(point, cfg.p, cfg.tolerance, cfg.max_sparse_passes, start=cfg.start_cett)
    index = outcome.solution_index if outcome.solution_index is not None else len(evaluations) - 1
    facts = _points_and_noise(measurement, evaluations)
    facts.update(cett=_cett_of(evaluations[index]), warnings=list(outcome.warnings), converged=outcome.converged)
    if not outcome.converged and outcome.solution_index is None:
        facts["warnings"].append("no CETT reached the PPL target; the last evaluated setting is reported")
    facts["interval"] = measurement.crossing_interval(
        evaluations, [_cett_of(e) for e in evaluations], 1 + cfg.p / 100, cfg.level, cfg.n_boot, cfg.seed,
        facts["warnings"]) if cfg.level > 0 else None
    facts["solution"] = {"method": "lowest-crossing", "cett": facts["cett"], "sparse_passes": len(evaluations),
                         "converged": outcome.converged, "activation": "measured"}
    if (warning := noise_warning(facts["ratio_noise"], cfg.tolerance)) is not None:
        facts["warnings"].append(warning)
    return PPLPSolved(evaluations[index], evaluations, facts)


__all__ = ["PPLPSolved", "activation_source", "solve"]

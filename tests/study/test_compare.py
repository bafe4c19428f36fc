"""The report's checks against the paper on hand-made cells: per-checkpoint gaps, trends, bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sparsinglaw.study.collect import CellData
from sparsinglaw.study.compare import relu_below_silu_per_checkpoint, trend_checks
from sparsinglaw.study.config import FitSpec
from sparsinglaw.study.fit import Analysis

TOKENS = [65_536 * (i + 1) for i in range(12)]


def _cell(act: str, ratios, half_width: float | None) -> CellData:
    cell = CellData(f"{act}-cell", act, Path("."), 64, 4, 1.9e5, TOKENS[-1])
    cell.points = list(zip(TOKENS, ratios))
    if half_width is not None:
        cell.intervals = {t: (a - half_width, a + half_width) for t, a in cell.points}
    return cell


def _analysis(*cells) -> Analysis:
    return Analysis(list(cells), spec=FitSpec(skip_fraction=0.25))


def test_relu_below_silu_needs_disjoint_intervals_at_every_checkpoint():
    relu = _cell("relu", np.linspace(0.10, 0.07, 12), 0.005)
    silu = _cell("silu", np.linspace(0.18, 0.24, 12), 0.005)
    (check,) = relu_below_silu_per_checkpoint(_analysis(relu, silu))
    assert check["verdict"] == "agrees" and "disjoint at 9 of 9" in check["found"]
    wide = _cell("silu", np.linspace(0.18, 0.24, 12), 0.08)  # overlapping intervals: not resolved
    relu_wide = _cell("relu", np.linspace(0.10, 0.07, 12), 0.08)
    (check,) = relu_below_silu_per_checkpoint(_analysis(relu_wide, wide))
    assert check["verdict"] == "inconclusive"


def test_without_intervals_points_are_compared_and_the_check_says_so():
    relu = _cell("relu", np.linspace(0.10, 0.07, 12), None)
    silu = _cell("silu", np.linspace(0.18, 0.24, 12), None)
    (check,) = relu_below_silu_per_checkpoint(_analysis(relu, silu))
    assert check["verdict"] == "agrees" and "no per-checkpoint intervals" in check["found"]


def test_trend_verdicts_follow_the_slope_interval():
    rng = np.random.default_rng(0)
    rising = _cell("silu", np.linspace(0.18, 0.30, 12) + rng.normal(0, 0.002, 12), None)
    flat = _cell("relu", 0.09 + rng.normal(0, 0.01, 12), None)
    checks = {c["claim"].split(":")[0]: c for c in trend_checks(_analysis(rising, flat))}
    assert checks["silu-cell"]["verdict"] == "agrees"
    assert "9 checkpoints after warmup" in checks["silu-cell"]["found"]
    assert checks["relu-cell"]["verdict"] in ("inconclusive", "disagrees", "agrees")
    falling_silu = _cell("silu", np.linspace(0.30, 0.18, 12), None)
    assert trend_checks(_analysis(falling_silu))[0]["verdict"] == "disagrees"


def test_parameters_at_a_bound_are_flagged():
    from sparsinglaw.laws.results import Interval
    from sparsinglaw.report.html import at_bound

    assert at_bound(2.07e8, Interval(4685, 8.86e47, 0.9, "bootstrap"))
    assert at_bound(4.8e-22, None)
    assert at_bound(0.5, Interval(0.1, 0.9, 0.9, "bootstrap", at_upper_bound=True))
    assert not at_bound(-3.05, Interval(-3.5, -2.6, 0.9, "bootstrap"))


def test_paper_curves_and_published_fits_agree():
    from sparsinglaw.study.paper_ref import paper_curves, published_law

    curves = paper_curves()
    if not curves:
        pytest.skip("the paper's curves are not available here")
    assert {c["activation"] for c in curves} == {"relu", "silu"}
    for c in curves:
        if c["fit"]:  # the published fit passes through the published points (PAPER.md section 3)
            pred = published_law(c["name"], np.array(c["tokens"]))
            assert np.mean(np.abs(pred - np.array(c["ratio"]))) < 0.01


def test_an_unresolved_trend_states_the_budget_that_would_resolve_it():
    from sparsinglaw.study.compare import resolving_budget

    assert resolving_budget((-0.01, 0.03), 1_000_000) == pytest.approx(4_000_000)  # half-width 2x the slope
    assert resolving_budget((0.01, 0.03), 1_000_000) == 1_000_000  # already resolved
    noisy = _cell("silu", 0.2 + 0.004 * np.log(np.array(TOKENS) / TOKENS[0])
                  + np.random.default_rng(1).normal(0, 0.01, 12), None)
    check = trend_checks(_analysis(noisy))[0]  # this seed straddles 0: [-0.00028, 0.0235]
    assert check["verdict"] == "inconclusive" and "resolves at about 8.2e+05 tokens" in check["found"]


def _scale_group(small: tuple, large: tuple) -> dict:
    def model(n, iv):
        return {"n_params": n, "identified": iv is not None, "low": iv[0] if iv else None,
                "high": iv[1] if iv else None}

    return {"activation": "relu", "models": [model(1.9e5, small), model(6e5, large)]}


@pytest.mark.parametrize("small, large, verdict", [
    ((0.070, 0.074), (0.075, 0.080), "agrees"),  # difference within [0.001, 0.010]
    ((0.070, 0.074), (0.120, 0.130), "disagrees"),  # at least 0.046 apart
    ((0.050, 0.090), (0.060, 0.110), "inconclusive"),  # the difference's bounds straddle the tolerance
    ((0.070, 0.074), None, "inconclusive"),  # a limit not identified
])
def test_limits_across_sizes(small, large, verdict):
    from sparsinglaw.study.compare import limits_across_sizes

    analysis = _analysis()
    analysis.scale = [_scale_group(small, large)]
    (check,) = limits_across_sizes(analysis)
    assert check["verdict"] == verdict and "similar across sizes (N = 1.9e+05 vs 6e+05)" in check["claim"]


def test_trend_verdict_splits_the_change_into_dead_and_live_neurons():
    # The demo's ReLU story: neurons revive (dead 0.77 -> 0.29) while live ones specialise (0.45 -> 0.10);
    # the overall A = (1 - dead) * live hides both. The check names each part; the parts sum to the change.
    dead, live = np.linspace(0.77, 0.29, 12), np.linspace(0.45, 0.10, 12)
    cell = _cell("relu", (1 - dead) * live, None)
    cell.dead, cell.live = list(zip(TOKENS, dead)), list(zip(TOKENS, live))
    cell.decay_start = TOKENS[-1] * 0.9
    (check,) = trend_checks(_analysis(cell))
    first, last = 3, 11  # skip_fraction 0.25 of 12 checkpoints
    from_dead = (dead[first] - dead[last]) * live[last]
    from_live = (1 - dead[first]) * (live[last] - live[first])
    assert from_dead + from_live == pytest.approx(cell.points[last][1] - cell.points[first][1])
    assert f"{from_dead:+.3f} comes from neurons that revive" in check["found"]
    assert f"{from_live:+.3f} from live neurons" in check["found"]
    assert "over live neurons A 0." in check["found"] and "slope in [" in check["found"]
    assert "2 of them in the learning-rate decay" in check["found"]  # 720,896 and 786,432 > 707,789
    plain = _cell("relu", (1 - dead) * live, None)  # tracked before live ratios existed: no such words
    (check,) = trend_checks(_analysis(plain))
    assert "live neurons" not in check["found"]


def test_limit_checks_say_which_fitted_checkpoints_fall_in_the_decay():
    from sparsinglaw.study.compare import limit_checks

    cell = _cell("relu", np.linspace(0.10, 0.07, 12), 0.005)
    cell.decay_start = TOKENS[-1] * 0.9
    (check,) = limit_checks(_analysis(cell))  # no fit: the limit is not identified, the text still says it
    assert "law fitted on the 9 checkpoints after warmup; 2 of them in the learning-rate decay" in check["found"]


def test_trend_and_limit_checks_are_counted_apart():
    """The trends a small budget resolves are one group, the findings resting on the fitted limit another:
    counts per group sum to the checks of that kind, and the summary states the trends first."""
    from sparsinglaw.study.compare import compare_with_paper
    from sparsinglaw.study.fit import analyze

    relu = _cell("relu", np.linspace(0.10, 0.07, 12), 0.005)
    silu = _cell("silu", np.linspace(0.18, 0.24, 12), 0.005)
    doc = compare_with_paper(analyze([relu, silu], FitSpec(skip_fraction=0.25)))
    kinds = {c["kind"] for c in doc["checks"]}
    assert kinds == {"trend", "limit"}
    for kind, counts in doc["counts_by_kind"].items():
        assert sum(counts.values()) == sum(c["kind"] == kind for c in doc["checks"])
    assert doc["counts_by_kind"]["trend"]["agrees"] == 3  # ReLU falls, SiLU rises, ReLU below SiLU throughout
    assert doc["summary"].startswith("All 3 checked trends agree")
    assert sum(doc["counts"].values()) == len(doc["checks"])


def test_a_trend_made_by_the_decay_says_so():
    """A ReLU run flat at constant rate whose last checkpoints rise in the decay: the verdict (on every judged
    checkpoint) disagrees, and its text gives the slope before the decay alone (straddling 0) and the move
    across the decay."""
    ratios = [0.14, 0.13, 0.126, 0.1262, 0.1258, 0.1261, 0.1259, 0.126, 0.1261, 0.1259, 0.131, 0.134]
    cell = _cell("relu", ratios, 0.0005)
    cell.decay_start = TOKENS[9]
    (check,) = trend_checks(_analysis(cell))
    assert check["verdict"] == "disagrees"
    found = check["found"]
    assert "over the 7 before the decay alone the slope is in [" in found
    low, high = (float(v) for v in found.split("before the decay alone the slope is in [")[1].split("]")[0].split(", "))
    assert low < 0 < high
    assert "across the decay A moves 0.126 -> 0.134" in found

"""PPL-p% search: convergence, the lowest-crossing rule, warnings, and the bootstrap interval."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

import reference as R
from helpers import random_eval_data, tiny_llama
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.metrics.pplp import SearchPoint, noise_warning, ratio_noise, search
from sparsinglaw.metrics.pplp_intervals import crossing_interval


def curve(fn):
    return lambda c: SearchPoint(c, fn(c), 1 - c)


@pytest.mark.parametrize("k", [0.5, 4.0, 40.0, 400.0])
def test_search_converges_on_smooth_curves(k):
    out = search(curve(lambda c: math.exp(k * c * c)), p=1.0, tol=1e-4, max_passes=12)
    assert out.converged
    solution = out.points[out.solution_index]
    assert abs(solution.ppl_ratio - 1.01) <= 1e-4
    assert len(out.points) <= 9  # far fewer than the ~20 of outer bisection
    assert not out.warnings


@pytest.mark.parametrize("start", [0.01, 0.03, 0.05, 0.08, 0.2])
def test_search_reports_lowest_observed_crossing_and_warns_when_not_monotone(start):
    # Crosses 1.01 several times (as small evaluation sets do), then climbs for good after 0.06.
    def ratio(c):
        return 1.003 + 0.012 * math.sin(c * 60) + (0.6 * (c - 0.06) if c > 0.06 else 0.0)

    out = search(curve(ratio), p=1.0, tol=1e-3, max_passes=20, start=start)
    solution = out.points[out.solution_index]
    assert abs(solution.ppl_ratio - 1.01) <= 1e-3
    # The documented rule: no evaluated CETT below the solution reached the target.
    assert not [q for q in out.points if q.cett < solution.cett and q.ppl_ratio >= 1.01]
    ordered = sorted(out.points, key=lambda q: q.cett)
    observed_dip = any(b.ppl_ratio < a.ppl_ratio for a, b in zip(ordered, ordered[1:]))
    assert observed_dip == any("not monotone" in w for w in out.warnings)


def quantized_noise(seed: int, c_star: float = 0.05, sd: float = 0.002):
    """Trend exp(log 1.01 (c / c*)^2) plus noise that CETTs within one 0.3% cell share, as real passes do
    (nearby CETTs give nearly the same thresholds); sd as measured on 512 tokens of SmolLM2."""

    def ratio(c):
        cell = math.floor(math.log(c) / 0.003)
        key = int(hashlib.sha256(f"{seed}:{cell}".encode()).hexdigest()[:8], 16)
        return math.exp(math.log(1.01) * (c / c_star) ** 2) + np.random.default_rng(key).normal(0, sd)

    return ratio


@pytest.mark.parametrize("seed", [3, 21, 79])
def test_search_leaves_a_bracket_the_noise_straddles_for_fresh_cetts_below_it(seed):
    # With these draws the bracket closes in on a jump across the target narrower than one noise cell, where
    # every CETT inside gives one of the same two ratios: 12 passes ran out there before fresh CETTs below it.
    out = search(curve(quantized_noise(seed)), p=1.0, tol=1e-3, max_passes=12)
    assert out.converged and abs(out.points[out.solution_index].ppl_ratio - 1.01) <= 1e-3


def test_search_still_shrinks_narrow_brackets_on_smooth_steep_curves():
    # A smooth trend (slope about 10 in log-log, not a power law) at tol 1e-5 needs a bracket narrower than the
    # fresh-CETT gap: the search must keep shrinking it.
    out = search(curve(lambda c: math.exp(0.00995 * math.exp(min(10 * (c / 0.07 - 1), 5.0)))), p=1.0, tol=1e-5,
                 max_passes=20)
    ordered = sorted(q.cett for q in out.points)
    assert min(b / a - 1 for a, b in zip(ordered, ordered[1:])) < 0.006  # it did go below the gap
    assert out.converged and abs(out.points[out.solution_index].ppl_ratio - 1.01) <= 1e-5


def test_search_warns_when_target_unreachable():
    out = search(curve(lambda c: 1 + 0.001 * c), p=1.0, tol=1e-3, max_passes=12)
    assert not out.converged
    assert any("stays below" in w for w in out.warnings)


def test_crossing_interval_covers_estimate_and_narrows_with_data():
    rng = np.random.default_rng(0)
    cetts = [0.02, 0.04, 0.06, 0.08]

    def synthetic(n):
        tokens = np.full(n, 100.0)
        dense = rng.normal(300, 20, n)
        sparse = [dense + 1000 * c**2 + rng.normal(0, 0.5, n) for c in cetts]  # ratio = exp(10 c^2)
        active = [np.full(n, (1 - c) * 1000) + rng.normal(0, 5, n) for c in cetts]
        slots = [np.full(n, 1000.0) for _ in cetts]
        return crossing_interval(dense, tokens, sparse, active, slots, cetts, 1.01, 0.9, 500, 0)

    small, large = synthetic(8), synthetic(200)
    true_c = math.sqrt(math.log(1.01) / 10)
    assert large["cett"][0] <= true_c <= large["cett"][1]
    width = lambda iv: iv["activation_ratio"][1] - iv["activation_ratio"][0]  # noqa: E731
    assert width(large) < width(small)


def test_pplp_lowest_crossing_on_tiny_model_hits_target_and_agrees_with_reference():
    model, data = tiny_llama("relu", seed=1), random_eval_data(n_sequences=8)
    config = MeasureConfig(metric="pplp", p=1.0, tolerance=1e-3, batch_size=8, solution="lowest-crossing")
    result = measure(model, data, config)
    assert abs(result.ppl_ratio - 1.01) <= 1e-3
    assert result.forward_passes <= 1 + 12
    assert result.solution["method"] == "lowest-crossing" and result.setting["solution"] == "lowest-crossing"
    ref = R.at_cett(model, data.input_ids, result.setting["cett"])
    assert result.activation_ratio == pytest.approx(ref["activation_ratio"], abs=0.005)
    for mine, theirs in zip(result.thresholds, ref["thresholds"]):
        assert mine == pytest.approx(theirs, rel=0.01)
    assert result.interval is not None
    lo, hi = result.interval["activation_ratio"]
    assert lo <= hi


def test_lowest_crossing_on_one_long_sequence_has_its_interval():
    """The lowest-crossing answer resamples blocks of tokens as the trend's does (``TargetMeasurement.groups``),
    so one long document gets an interval (resampling whole sequences gave none with one sequence)."""
    model, data = tiny_llama("relu", seed=1), random_eval_data(n_sequences=1, seq_len=1024)
    result = measure(model, data, MeasureConfig(metric="pplp", p=1.0, tolerance=2e-3, batch_size=1,
                                                solution="lowest-crossing"))
    iv = result.interval
    assert iv is not None and "over the search's units" in iv["method"]
    assert iv["cett"][0] <= iv["cett"][1] and iv["activation_ratio"][0] <= iv["activation_ratio"][1]
    assert not any(w.startswith("no interval") for w in result.warnings)


def test_lowest_crossing_with_nothing_bracketing_the_target_gives_no_interval():
    """A first pass that reads the target within the tolerance ends the search: no two passes bracket the
    target, every resample's crossing sits outside them, and an interval there would only repeat the pass's
    CETT. It is left out with the reason, never printed as [c, c]."""
    model, data = tiny_llama("relu", seed=1), random_eval_data(n_sequences=8)
    first = measure(model, data, MeasureConfig(metric="cett", cett=0.2, batch_size=8))
    p = (first.ppl_ratio - 1) * 100  # the target the first pass reads exactly
    result = measure(model, data, MeasureConfig(metric="pplp", p=p, tolerance=1e-3, batch_size=8, start_cett=0.2,
                                                solution="lowest-crossing"))
    assert result.setting["cett"] == 0.2 and result.solution.sparse_passes == 1
    assert result.interval is None
    assert any("lowest crossing lies outside the passes" in w for w in result.warnings)


def test_an_answer_without_an_interval_points_to_why_not_to_one_pass():
    """4 sequences of 64 tokens are 4 blocks, fewer than an interval resamples: the answer (interpolated
    between passes) has none, a warning says why, and the table points there instead of "one pass"."""
    model, data = tiny_llama("silu", seed=1), random_eval_data(n_sequences=4, seq_len=64)
    result = measure(model, data, MeasureConfig(metric="pplp", p=1.0, batch_size=4, tolerance=5e-3))
    assert result.no_answer is None and result.interval is None
    assert any(w.startswith("no interval: 4 blocks") for w in result.warnings)
    row = next(line for line in result.table().splitlines() if line.startswith("activation ratio"))
    assert row.endswith("see the warnings")


def test_pplp_trend_on_tiny_model_agrees_with_reference_at_its_answer():
    """The default answer: where the trend crosses. The slow reference, run at that CETT, must give the same
    activation ratio (ours is interpolated between passes) and thresholds, and a PPL ratio within the scatter."""
    model, data = tiny_llama("relu", seed=1), random_eval_data(n_sequences=8)
    result = measure(model, data, MeasureConfig(metric="pplp", p=1.0, tolerance=1e-3, batch_size=8))
    sol = result.solution
    assert sol["method"] == "trend" and sol["converged"] and sol["standard_error"] <= 1e-3
    assert result.setting["cett"] == sol["cett"]
    ref = R.at_cett(model, data.input_ids, sol["cett"])
    assert result.activation_ratio == pytest.approx(ref["activation_ratio"], abs=0.005)
    for mine, theirs in zip(result.thresholds, ref["thresholds"]):
        assert mine == pytest.approx(theirs, rel=0.01)
    assert abs(ref["ppl_ratio"] - 1.01) <= 4 * sol["noise_sd"]
    lo, hi = result.interval["activation_ratio"]
    assert lo < hi and lo <= result.activation_ratio <= hi


def test_pplp_trend_below_eight_sequences_gives_no_interval_and_says_why():
    model, data = tiny_llama("relu", seed=0), random_eval_data(n_sequences=4)
    result = measure(model, data, MeasureConfig(metric="pplp", p=1.0, batch_size=4))
    assert result.interval is None
    assert any(w.startswith("no interval: 4 blocks of up to 64 tokens, fewer than 8") for w in result.warnings)


@pytest.mark.slow
def test_published_procedure_and_fast_path_reach_the_same_target():
    """The full reference PPL-p% (outer bisection, ~20 passes) against the production search."""
    model, data = tiny_llama("silu", seed=2), random_eval_data(n_sequences=8)
    ref = R.ppl_p(model, data.input_ids, p=1.0, tol=1e-3)
    ours = measure(model, data, MeasureConfig(metric="pplp", p=1.0, batch_size=8))
    assert ours.forward_passes < ref["forward_passes"]
    # The trend's answer, re-run by the reference at its CETT: the target within this data's scatter.
    at_answer = R.at_cett(model, data.input_ids, ours.setting["cett"])
    assert abs(at_answer["ppl_ratio"] - 1.01) <= 4 * ours.solution["noise_sd"] + 2 * ours.solution["standard_error"]
    assert abs(ref["ppl_ratio"] - 1.01) <= 5e-3


def test_ratio_noise_recovers_the_per_token_scatter_and_ignores_the_trend():
    """Independent per-token loss noise of sd s in every pass gives each ratio an sd of target * s / sqrt(N);
    a shared move (the trend) between the two passes must not count as noise."""
    rng = np.random.default_rng(3)
    tokens = rng.integers(100, 128, size=400).astype(np.float64)
    s, target = 0.03, 1.01

    def one_pass(shift):  # per-sequence sums of per-token NLLs: 2.0 + shift + noise
        return np.array([rng.normal(2.0 + shift, s, int(n)).sum() for n in tokens])

    passes = [one_pass(0.0), one_pass(0.004)]
    noise = ratio_noise(tokens, passes, [0.030, 0.0306], target)
    expected = target * s / math.sqrt(tokens.sum())
    assert noise["sd"] == pytest.approx(expected, rel=0.15)
    assert noise["cetts"] == [0.030, 0.0306] and noise["sequences"] == 400 and noise["tokens"] == int(tokens.sum())


def test_ratio_noise_uses_the_closest_pair_between_fresh_gap_and_the_maximum():
    tokens = np.full(4, 100.0)
    passes = [np.array([0.0, 0.0, 0.0, 0.0]), np.array([1.0, -1.0, 1.0, -1.0]), np.array([5.0, -5.0, 5.0, -5.0])]
    # 0.05 vs 0.05001 is closer than FRESH_GAP (shares the noise), 0.05 vs 0.06 farther than NOISE_PAIR_MAX.
    assert ratio_noise(tokens, passes[:2], [0.05, 0.05001], 1.01) is None
    assert ratio_noise(tokens, passes[:2], [0.05, 0.06], 1.01) is None
    assert ratio_noise(tokens[:1], [p[:1] for p in passes[:2]], [0.05, 0.0505], 1.01) is None  # one sequence
    chosen = ratio_noise(tokens, passes, [0.05, 0.052, 0.0505], 1.01)  # pairs 4%, 1%, 3%: the 1% one
    assert chosen["cetts"] == [0.05, 0.0505]
    # Moves of +-5 nats per 100-token sequence: per-token variance 25/100 * 4/3, over 400 tokens, halved.
    assert chosen["sd"] == pytest.approx(1.01 * math.sqrt(25 / 100 * 4 / 3 / 400 / 2))


def test_noise_warning_only_above_half_the_tolerance_with_the_tokens_that_would_resolve_it():
    noise = {"sd": 0.001, "cetts": [0.03, 0.0303], "sequences": 4, "tokens": 500}
    assert noise_warning(noise, 2e-3) is None and noise_warning(None, 1e-3) is None
    warning = noise_warning(noise, 1e-3)
    assert "about 2,000 evaluation tokens" in warning  # 500 * (2 * 0.001 / 0.001)^2
    assert "only about 68% of the time" in warning  # P(|N(0, tol)| <= tol)

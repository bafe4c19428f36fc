"""Prediction at a token count, tokens to come within a distance of A0, and back-tests."""

from __future__ import annotations

import numpy as np
import pytest

from sparsinglaw.errors import ConfigError, DataError
from sparsinglaw.laws import LAWS, Curve, fit_law
from sparsinglaw.laws.predict import backtest, predict, tokens_to_within


def _exact(law, truth):
    d = truth["d"]
    return Curve(d * 1e9, LAWS[law](d, truth["params"]), law)


def test_predict_matches_law(relu_truth):
    res = fit_law(_exact("relu", relu_truth), "relu", interval="none")
    pred = predict(res, 500e9)
    assert pred.value == pytest.approx(LAWS["relu"](np.array([500.0]), relu_truth["params"])[0], rel=1e-6)
    assert pred.low is None
    with pytest.raises(ConfigError):
        predict(res, -1)


def test_predict_band_from_bootstrap(silu_truth):
    d = silu_truth["d"]
    a = LAWS["silu"](d, silu_truth["params"]) + np.random.default_rng(0).normal(0, 5e-4, len(d))
    res = fit_law(Curve(d * 1e9, a, "s"), "silu", interval="bootstrap", n_boot=30)
    pred = predict(res, 300e9)
    assert pred.low <= pred.value <= pred.high


def test_tokens_to_within_closed_forms(relu_truth, silu_truth):
    """ReLU: exp(b - c D^alpha) = eps  =>  D = ((b - log eps) / c)^(1/alpha); SiLU: D = (c / eps)^(1/alpha)."""
    eps = 1e-3
    res = fit_law(_exact("relu", relu_truth), "relu", interval="none")
    alpha, b, c, _ = relu_truth["params"]
    expected = ((b - np.log(eps)) / c) ** (1 / alpha) * 1e9
    assert tokens_to_within(res, eps).tokens == pytest.approx(expected, rel=1e-4)
    res = fit_law(_exact("silu", silu_truth), "silu", interval="none")
    alpha, c, _ = silu_truth["params"]
    assert tokens_to_within(res, eps).tokens == pytest.approx((c / eps) ** (1 / alpha) * 1e9, rel=1e-4)
    with pytest.raises(ConfigError):
        tokens_to_within(res, 0)


def test_tokens_to_within_needs_a_limit(relu_truth):
    res = fit_law(_exact("relu", relu_truth), "log", interval="none")
    with pytest.raises(ConfigError, match="no finite limit"):
        tokens_to_within(res, 1e-3)


def test_backtest_on_exact_curve(relu_truth):
    bt = backtest(_exact("relu", relu_truth), "relu", 0.5, interval="none")
    assert bt.train_points == 15 and bt.test_points == 15
    assert bt.test_mae < 1e-6 and bt.final_predicted == pytest.approx(bt.final_actual, abs=1e-6)
    assert set(bt.to_dict()) >= {"train_mae", "test_mae", "test_max_error", "fit"}
    with pytest.raises(ConfigError):
        backtest(_exact("relu", relu_truth), "relu", 1.0)


def test_backtest_real_curve(data_dir):
    from sparsinglaw.laws import read_curve

    bt = backtest(read_curve(data_dir / "0.8b_silu.json"), "silu", 0.6, interval="none")
    assert bt.test_mae < 5e-3
    with pytest.raises(DataError):
        backtest(Curve([1e9, 2e9], [0.3, 0.31], "tiny"), "silu", 0.99)

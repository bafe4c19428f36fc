"""fit_law / fit_all: recovery on clean curves, warmup exclusion, ranking, errors, JSON output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsinglaw.errors import ConfigError, DataError, SparsingLawError
from sparsinglaw.laws import LAWS, Curve, FitOptions, LawFitError, fit_all, fit_law


def _curve(law: str, params, d, noise=0.0, seed=0, name="synthetic", activation=None) -> Curve:
    a = LAWS[law](d, params) + np.random.default_rng(seed).normal(0, noise, len(d))
    return Curve(d * 1e9, a, name, activation)


def test_exact_relu_curve_is_recovered(relu_truth):
    res = fit_law(_curve("relu", relu_truth["params"], relu_truth["d"]), "relu", interval="none")
    np.testing.assert_allclose(res.vector, relu_truth["params"], rtol=1e-4)
    assert res.mae < 1e-9 and res.converged and res.limit.identified


def test_exact_silu_curve_is_recovered(silu_truth):
    res = fit_law(_curve("silu", silu_truth["params"], silu_truth["d"]), "silu", interval="none")
    np.testing.assert_allclose(res.vector, silu_truth["params"], rtol=1e-5)


def test_tuple_input_and_skip_options(relu_truth):
    d = relu_truth["d"]
    data = (d * 1e9, LAWS["relu"](d, relu_truth["params"]))
    res = fit_law(data, "relu", interval="none", skip_fraction=0.2)
    assert res.n_skipped == 6 and res.n_points == 24
    res = fit_law(data, "relu", interval="none", skip_tokens=10e9)
    assert res.n_skipped == int(np.sum(d < 10))
    with pytest.raises(ConfigError, match="skip-fraction"):
        fit_law(data, "relu", skip_fraction=1.5)
    with pytest.raises(DataError, match="no points"):
        fit_law(data, "relu", skip_tokens=1e15)


def test_too_few_points_names_law():
    with pytest.raises(DataError, match=r"law relu: 4 points .* needs at least 5"):
        fit_law(([1e9, 2e9, 3e9, 4e9], [0.1, 0.09, 0.085, 0.08]), "relu")
    res = fit_law(([1e9, 2e9, 3e9, 4e9], [0.3, 0.35, 0.37, 0.38]), "silu", interval="none")
    assert res.n_points == 4


def test_non_convergence_is_a_clear_error(relu_truth):
    curve = _curve("relu", relu_truth["params"], relu_truth["d"], noise=3e-4)
    with pytest.raises(LawFitError, match="law relu on synthetic: did not converge"):
        fit_law(curve, "relu", interval="none", max_nfev=1)
    assert issubclass(LawFitError, SparsingLawError)


def test_bad_options():
    data = ([1e9, 2e9, 3e9, 4e9, 5e9], [0.1, 0.09, 0.085, 0.08, 0.079])
    with pytest.raises(ConfigError, match="interval"):
        fit_law(data, "relu", interval="jackknife")
    with pytest.raises(ConfigError, match="level"):
        fit_law(data, "relu", level=1.5)
    with pytest.raises(ConfigError, match=r"unknown setting bogus \(known: boot_method, "):
        fit_law(data, "relu", bogus=1)
    with pytest.raises(ConfigError, match="n_boot: expected int, got 'many'"):
        fit_law(data, "relu", n_boot="many")
    with pytest.raises(ConfigError, match="bootstrap method"):
        fit_law(data, "relu", boot_method="wild")
    with pytest.raises(ConfigError, match="ranking"):
        fit_all(data, rank_by="r2")


def test_auto_ranks_laws_and_prefers_paper_form(silu_truth):
    curve = _curve("silu", silu_truth["params"], silu_truth["d"], noise=3e-4, activation="silu")
    rep = fit_all(curve, rank_by="bic", interval="none")
    assert rep.preferred == "silu" and rep.best.law == "silu"
    bics = [r.bic for r in rep.results]
    assert bics == sorted(bics)
    assert rep.results[0].law == "silu"


def test_auto_reports_a_failing_law_without_failing():
    curve = Curve([1e9, 2e9, 3e9, 4e9], [0.30, 0.35, 0.37, 0.38], "short")
    rep = fit_all(curve, interval="none")
    assert "relu" in rep.failures and "needs at least 5" in rep.failures["relu"]
    assert [r.law for r in rep.results] == ["silu"]


def test_to_dict_is_json_with_named_params_and_intervals(relu_truth):
    curve = _curve("relu", relu_truth["params"], relu_truth["d"], noise=2e-4)
    res = fit_law(curve, "relu", FitOptions(n_boot=20, interval="both"))
    doc = json.loads(json.dumps(res.to_dict()))
    assert doc["law"] == "relu" and set(doc["params"]) == {"alpha", "b", "c", "A0"}
    assert {"mae", "mse", "aic", "bic"} <= set(doc)
    assert {"A0", "alpha", "A0_profile", "alpha_profile"} <= set(doc["intervals"])
    assert doc["intervals"]["A0"]["level"] == 0.9
    assert doc["limit"]["identified"] is True and doc["limit"]["value"] == pytest.approx(res.params["A0"])
    rep = fit_all(curve, interval="none")
    assert json.loads(json.dumps(rep.to_dict()))["ranking"][0] in LAWS


def test_pairs_bootstrap(silu_truth):
    curve = _curve("silu", silu_truth["params"], silu_truth["d"], noise=3e-4)
    res = fit_law(curve, "silu", interval="bootstrap", boot_method="pairs", n_boot=30)
    assert res.intervals["A0"].method == "bootstrap-pairs"
    assert res.intervals["A0"].contains(res.params["A0"])
    assert res.samples.shape[1] == 3


def test_fit_options_are_a_frozen_config():
    """FitOptions shares the Config base: from_dict, merge and to_dict refuse unknown keys and wrong types by
    field name, as every other settings class does, and an options object cannot be changed in place."""
    import dataclasses

    from sparsinglaw.config import Config

    opts = FitOptions.from_dict({"n_boot": 50, "interval": "profile"})
    assert isinstance(opts, Config) and (opts.n_boot, opts.interval) == (50, "profile")
    merged = opts.merge(["level=0.8", "seed=none", "skip_fraction=0.1"])
    assert (merged.level, merged.seed, merged.skip_fraction, merged.n_boot) == (0.8, None, 0.1, 50)
    assert opts.level == 0.9  # merge builds a new object
    assert FitOptions.from_dict(merged.to_dict()) == merged
    with pytest.raises(ConfigError, match=r"unknown setting bogus \(known: "):
        FitOptions.from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match=r"unknown setting levle \(known: "):
        opts.merge(["levle=0.8"])
    with pytest.raises(ConfigError, match="n_boot: expected int, got 'abc'"):
        opts.merge(["n_boot=abc"])
    with pytest.raises(ConfigError, match="level must be in"):
        opts.merge(["level=1.5"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.level = 0.5

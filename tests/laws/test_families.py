"""Law registry: named parameters, formulas, Jacobians and linearized views (docs/paper.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest

from sparsinglaw.errors import ConfigError
from sparsinglaw.laws import LAWS, get_law, law_for_activation

PARAMS = {
    "relu": [0.449, -3.05, 0.286, 0.0674],
    "silu": [0.9, 0.27, 0.385],
    "log": [0.1, -0.007, 1.0, 0.1],
    "sigmoid": [1.07, 0.025, -0.025, 0.0],
}


def test_registry_has_paper_laws_with_named_parameters():
    assert set(LAWS) >= {"relu", "silu", "log", "sigmoid"}
    assert LAWS["relu"].param_names == ("alpha", "b", "c", "A0")
    assert LAWS["silu"].param_names == ("alpha", "c", "A0")
    assert LAWS["log"].param_names == ("A0", "c", "a", "b")
    assert LAWS["sigmoid"].param_names == ("a", "b", "c", "d")
    for law in LAWS.values():
        assert len(law.lower) == len(law.upper) == law.n_params


def test_formulas_match_paper():
    d = np.array([1.0, 10.0, 100.0])
    alpha, b, c, a0 = PARAMS["relu"]
    np.testing.assert_allclose(LAWS["relu"](d, PARAMS["relu"]), np.exp(-c * d**alpha + b) + a0)
    alpha, c, a0 = PARAMS["silu"]
    np.testing.assert_allclose(LAWS["silu"](d, PARAMS["silu"]), -c * d ** (-alpha) + a0)
    a0, c, a, b = PARAMS["log"]
    np.testing.assert_allclose(LAWS["log"](d, PARAMS["log"]), a0 + c * np.log(a * d + b))
    a, b, c, dd = PARAMS["sigmoid"]
    np.testing.assert_allclose(LAWS["sigmoid"](d, PARAMS["sigmoid"]), a - 1 / (1 + b * np.exp(c * d + dd)))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_analytic_jacobian_matches_finite_differences(name):
    law, p = LAWS[name], np.array(PARAMS[name])
    d = np.linspace(2.0, 80.0, 12)
    jac = law.jac(d, *p)
    for i in range(law.n_params):
        h = 1e-6 * max(abs(p[i]), 1e-3)
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        np.testing.assert_allclose(jac[:, i], (law(d, up) - law(d, down)) / (2 * h), rtol=1e-4, atol=1e-9)


def test_relu_solver_space_round_trips():
    law, p = LAWS["relu"], np.array(PARAMS["relu"])
    d = np.linspace(2.0, 80.0, 12)
    space = law.space(d)
    np.testing.assert_allclose(space.decode(space.encode(p)), p, rtol=1e-12)
    np.testing.assert_allclose(space.func(space.encode(p)), law(d, p), rtol=1e-12)


@pytest.mark.parametrize("name", ["relu", "silu", "sigmoid"])
def test_linearized_view_is_a_straight_line(name):
    law, p = LAWS[name], np.array(PARAMS[name])
    d = np.linspace(2.0, 80.0, 12)
    lin = law.linearize(d, law(d, p), p)
    slope, icpt = np.polyfit(lin.x, lin.y, 1)
    np.testing.assert_allclose(lin.y, slope * lin.x + icpt, atol=1e-6)
    if name == "relu":
        assert slope == pytest.approx(p[0], rel=1e-6)  # slope alpha in log-log
    if name == "silu":
        assert slope == pytest.approx(-p[0], rel=1e-6)


def test_limits():
    assert LAWS["relu"].limit(np.array(PARAMS["relu"])) == pytest.approx(0.0674)
    assert LAWS["silu"].limit(np.array(PARAMS["silu"])) == pytest.approx(0.385)
    assert LAWS["log"].limit(np.array(PARAMS["log"])) is None
    assert LAWS["sigmoid"].limit(np.array(PARAMS["sigmoid"])) == pytest.approx(0.07)


def test_lookup_errors_and_activation_mapping():
    with pytest.raises(ConfigError, match="unknown law 'tanh'"):
        get_law("tanh")
    assert law_for_activation("ReLU").name == "relu"
    assert law_for_activation("silu").name == "silu"
    assert law_for_activation("gelu") is None
    assert law_for_activation(None) is None
    with pytest.raises(ConfigError, match="no parameter"):
        LAWS["relu"].index("beta")


@pytest.mark.parametrize("name", ["relu", "silu"])
def test_variable_projection_recovers_parameters_and_honours_fixed(name):
    law, p = LAWS[name], np.array(PARAMS[name])
    d = np.linspace(2.0, 80.0, 20)
    a = law(d, p)
    fitted, ok = law.project(d, a, p * 1.1, 300)
    assert ok
    np.testing.assert_allclose(law(d, fitted), a, atol=1e-7)
    j = law.index("A0")
    held, ok = law.project(d, a, p, 300, {j: 0.05})
    assert ok and held[j] == 0.05

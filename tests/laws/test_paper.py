"""The paper's reference shipped as package data: curves, published coefficients, and their packaging."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsinglaw.errors import ConfigError
from sparsinglaw.laws import LAWS, Curve, read_curve
from sparsinglaw.laws.paper import (
    _FITS,
    load_paper_curve,
    paper_coefficients,
    paper_curve_names,
    paper_curve_path,
)

REPO = Path(__file__).resolve().parents[2]
SIZES = ("0.1b", "0.2b", "0.4b", "0.8b", "1.2b", "2.4b")


def test_eleven_curves_each_with_a_published_fit():
    names = paper_curve_names()
    assert names == sorted(names) and len(names) == 11
    assert set(names) == {f"{s}_{a}" for s in SIZES for a in ("relu", "silu")} - {"2.4b_silu"}
    assert set(_FITS) == set(names)
    for name in names:
        fit = paper_coefficients(name)
        assert fit.law == name.rsplit("_", 1)[1] and tuple(fit.params) == LAWS[fit.law].param_names


def test_loaded_curve_is_the_file_read_as_any_curve():
    curve = load_paper_curve("0.4B_ReLU.json")  # case and suffix are forgiven
    raw = json.loads(paper_curve_path("0.4b_relu").read_text())
    assert isinstance(curve, Curve) and curve.name == "0.4b_relu" and curve.activation == "relu"
    np.testing.assert_array_equal(curve.tokens, np.asarray(raw["token_passed"], dtype=float))
    np.testing.assert_array_equal(curve.ratio, np.asarray(raw["activation_ratio"], dtype=float))
    assert curve.meta["size_label"] == "0.4B" and curve.meta["reference"] == "paper"
    np.testing.assert_array_equal(read_curve(paper_curve_path("0.4b_relu")).ratio, curve.ratio)


def test_published_goodness_reproduces_on_the_packaged_points():
    """The paper reports MAE 4.07e-4 and MSE 2.68e-7 for its 0.1B ReLU fit: data and coefficients agree."""
    curve, fit = load_paper_curve("0.1b_relu"), paper_coefficients("0.1b_relu")
    resid = LAWS["relu"](curve.d, fit.vector) - curve.ratio
    assert float(np.mean(np.abs(resid))) == pytest.approx(fit.mae, abs=5e-7)
    assert float(np.mean(resid**2)) == pytest.approx(fit.mse, abs=5e-10)


@pytest.mark.parametrize("name", paper_curve_names())
def test_every_published_fit_follows_its_curve(name):
    """A mistyped coefficient would put the law far off the points: each fit stays within 10% of the spread."""
    curve, fit = load_paper_curve(name), paper_coefficients(name)
    assert fit.mae_on(curve) < 0.1 * float(np.ptp(curve.ratio))
    assert fit.to_dict()["params"] == fit.params and fit.sets()[0] == fit.params


def test_2_4b_relu_keeps_both_published_sets():
    fit = paper_coefficients("2.4b_relu")
    assert [s["A0"] for s in fit.sets()] == [0.0648, 0.0712]


def test_unknown_name_lists_the_curves():
    with pytest.raises(ConfigError) as err:
        load_paper_curve("9b_gelu")
    assert str(err.value) == f"unknown paper curve '9b_gelu'; known: {', '.join(paper_curve_names())}"
    with pytest.raises(ConfigError, match="unknown paper curve"):
        paper_coefficients("9b_gelu")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_pyproject_ships_the_data_folder():
    """Every file of paper_data matches a package-data glob, so a built wheel carries it."""
    import tomllib

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    folder = REPO / "src" / "sparsinglaw" / "laws" / "paper_data"
    assert sorted(p.stem for p in folder.glob("*.json")) == paper_curve_names()
    for path in folder.iterdir():
        rel = path.relative_to(folder.parent).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs["sparsinglaw.laws"]), rel

"""Impossible thresholds (NaN, infinite, negative, not numbers) are refused wherever thresholds enter: a
thresholds file, a measurement result, a list, and export from Python."""

from __future__ import annotations

import json
import math

import pytest

from helpers import random_eval_data, tiny_llama
from sparsinglaw.errors import ConfigError
from sparsinglaw.export import export_sparse
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.thresholds import Thresholds, apply_thresholds, check_threshold_values


@pytest.fixture(scope="module")
def model_and_result():
    model = tiny_llama("relu")
    return model, measure(model, random_eval_data(n_sequences=4), MeasureConfig(metric="cett", cett=0.2, level=0.0))


@pytest.mark.parametrize("bad,phrase", [(math.nan, "finite"), (math.inf, "finite"), (-1e-3, ">= 0"),
                                        ("0.1", "no numeric"), (None, "no numeric"), (True, "no numeric")])
def test_each_kind_of_impossible_threshold_is_named(bad, phrase):
    layers = [{"name": "a", "threshold": 0.1}, {"name": "b", "threshold": bad}]
    with pytest.raises(ConfigError, match=phrase) as caught:
        check_threshold_values(layers, "t.json")
    assert "t.json: b" in str(caught.value)
    assert check_threshold_values([{"threshold": 0}, {"threshold": 2.5}]) == [0.0, 2.5]


def test_a_measurement_result_with_a_nan_threshold_is_refused(model_and_result, tmp_path):
    _, result = model_and_result
    data = result.to_dict()
    data["layers"][1]["threshold"] = math.nan
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data, allow_nan=True))
    with pytest.raises(ConfigError, match="finite"):
        Thresholds.load(path)
    data["layers"][1]["threshold"] = 0.01
    path.write_text(json.dumps(data))
    assert Thresholds.load(path).values[1] == 0.01


def test_applying_or_exporting_nan_thresholds_from_python_is_refused(model_and_result, tmp_path):
    model, result = model_and_result
    with pytest.raises(ConfigError, match="finite"):
        with apply_thresholds(model, [0.1, math.nan]):
            pass
    bad = Thresholds.from_result(result)
    bad.layers[0]["threshold"] = math.nan
    with pytest.raises(ConfigError, match="finite"):
        with apply_thresholds(model, bad):
            pass
    with pytest.raises(ConfigError, match="finite"):
        export_sparse(model, None, bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()

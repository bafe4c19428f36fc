"""Statistical guardrails: implausible measurements and law fits become one-line warnings; sound ones none."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from helpers import random_eval_data, saved_tiny_model, tiny_llama
from sparsinglaw.cli import main
from sparsinglaw.guardrails import fit_warnings, measure_warnings, model_activation, scale_warnings
from sparsinglaw.laws import LAWS, Curve, fit_law
from sparsinglaw.laws.results import Interval
from sparsinglaw.measure import MeasureConfig, measure


@pytest.fixture(scope="module")
def relu_result():
    model = tiny_llama("relu")
    return model, measure(model, random_eval_data(n_sequences=4), MeasureConfig(metric="zero"))


def test_a_sound_measurement_has_no_warnings(relu_result):
    model, result = relu_result
    sound = dataclasses.replace(result, dense_ppl=100.0, ppl_ratio=1.01, dead_neuron_ratio=0.1)
    assert measure_warnings(sound, model) == []
    assert model_activation(model) == "relu"


def test_each_implausible_measurement_gives_one_line(relu_result):
    model, result = relu_result
    bad = dataclasses.replace(result, dense_ppl=5000.0, ppl_ratio=3.5, dead_neuron_ratio=0.8)
    lines = measure_warnings(bad, model)
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert "above the vocabulary size 256" in lines[0] and "--hidden-act" in lines[0]
    assert "PPL ratio 3.5" in lines[1]
    assert "80% of the neurons are dead" in lines[2]
    assert measure_warnings(bad, model) == lines  # pure: the same lines every call
    assert "does not run correctly" in measure_warnings(dataclasses.replace(result, dense_ppl=float("nan")))[0]
    assert measure_warnings(bad) == lines[1:]  # without the model: no vocabulary size to compare with


def test_zero_metric_on_a_non_relu_activation_warns(relu_result):
    _, result = relu_result
    silu = tiny_llama("silu")
    sound = dataclasses.replace(result, dense_ppl=100.0, ppl_ratio=1.0, dead_neuron_ratio=0.0)
    (line,) = measure_warnings(sound, silu)
    assert "--metric zero" in line and "silu" in line
    assert measure_warnings(dataclasses.replace(sound, metric="cett"), silu) == []


def test_measure_cli_logs_the_warnings(tmp_path, caplog):
    model_dir = saved_tiny_model(tmp_path / "m", hidden_act="silu")
    with caplog.at_level(logging.WARNING, logger="sparsinglaw"):
        assert main(["measure", "--model", str(model_dir), "--metric", "zero", "--seq-len", "32",
                     "--max-tokens", "128"]) == 0
    assert any("--metric zero" in r.getMessage() for r in caplog.records)


def _relu_fit():
    d = np.linspace(2.84, 85.0, 30)
    params = np.array([0.449, -3.05, 0.286, 0.0674])
    noise = np.random.default_rng(0).normal(0, 2e-4, len(d))
    return fit_law(Curve(d * 1e9, LAWS["relu"](d, params) + noise, "0.2b_relu", "relu"), "relu", interval="none")


def test_a_sound_fit_has_no_warnings():
    result = _relu_fit()
    result.intervals = {name: Interval(v - 0.1 * abs(v) - 1e-6, v + 0.1 * abs(v) + 1e-6, 0.9, "profile")
                        for name, v in result.params.items()}
    assert fit_warnings(result) == []


def test_a_parameter_at_its_bound_and_outside_its_interval_warns():
    """The shape of the reported case: c=1.571e-23 with the interval [2.11e-22, 0.9284]."""
    result = _relu_fit()
    result.params = {**result.params, "c": 1.571e-23}
    result.intervals = {"c": Interval(2.11e-22, 0.9284, 0.9, "profile")}
    lines = fit_warnings(result)
    assert len(lines) == 2
    assert "c=1.571e-23 sits at its lower bound 0" in lines[0]
    assert "outside its own 90% interval [2.11e-22, 0.9284]" in lines[1]
    result.params = {**result.params, "alpha": 10.0}
    assert any("alpha=10 sits at its upper bound 10" in line for line in fit_warnings(result))


def test_scale_comparison_mixing_activations_warns():
    relu = Curve(np.array([1e9, 2e9, 3e9]), np.array([0.3, 0.2, 0.1]), "0.1b_relu", "relu")
    silu = Curve(np.array([1e9, 2e9, 3e9]), np.array([0.5, 0.45, 0.4]), "0.1b_silu", "silu")
    (line,) = scale_warnings([relu, silu, relu])
    assert "relu: 0.1b_relu, 0.1b_relu" in line and "silu: 0.1b_silu" in line
    assert scale_warnings([relu, relu]) == [] and scale_warnings(["relu", None]) == []


def test_fit_table_flags_parameters_at_a_bound_instead_of_printing_them():
    from sparsinglaw.guardrails import unreliable_params
    from sparsinglaw.laws import fit_all, load_paper_curve
    from sparsinglaw.laws.report import fit_table

    report = fit_all(load_paper_curve("0.1b_relu"), laws=["silu"], n_boot=20)
    (res,) = report.results
    flags = unreliable_params(res)
    assert flags.get("c") == "at its lower bound"  # a SiLU law on a ReLU curve: c runs to 0 (printed 1.6e-23 before)
    table = fit_table(report)
    assert "c=(at its lower bound, not determined)" in table and "e-23" not in table.split("warning")[0]

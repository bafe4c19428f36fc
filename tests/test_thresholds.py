"""Thresholds file: round trip, compatibility checks, and applying them reproduces the measurement."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import tiny_llama
from sparsinglaw.capture.passes import run_pass
from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.thresholds import Thresholds, apply_thresholds


def test_applying_result_thresholds_reproduces_its_ppl_and_activation(tmp_path, tiny_model, eval_data):
    # lowest-crossing reports a CETT it ran a pass at: re-applying its thresholds repeats that pass exactly.
    result = measure(tiny_model, eval_data, MeasureConfig(metric="pplp", p=1.0, solution="lowest-crossing"))
    path = Thresholds.from_result(result).save(tmp_path / "t.json")
    thresholds = Thresholds.load(path)
    assert thresholds.values == result.thresholds
    dense = run_pass(tiny_model, eval_data, batch_size=4)
    with apply_thresholds(tiny_model, thresholds) as stats:
        sparse = run_pass(tiny_model, eval_data, batch_size=4)
    assert math.exp(sparse.mean_nll - dense.mean_nll) == pytest.approx(result.ppl_ratio, abs=1e-6)
    assert stats.activation_ratio == pytest.approx(result.activation_ratio, abs=1e-9)
    for module in tiny_model.modules():
        assert not module._forward_pre_hooks


def test_trend_thresholds_are_those_of_the_answer_cett(tmp_path, tiny_model, eval_data):
    """The trend answer may lie between passes: its thresholds are the answer CETT's, their activation ratio
    is the one the result read there, and their PPL ratio is the trend's (1 + p%) plus this data's scatter."""
    result = measure(tiny_model, eval_data, MeasureConfig(metric="pplp", p=1.0))
    thresholds = Thresholds.load(Thresholds.from_result(result).save(tmp_path / "t.json"))
    dense = run_pass(tiny_model, eval_data, batch_size=4)
    with apply_thresholds(tiny_model, thresholds) as stats:
        sparse = run_pass(tiny_model, eval_data, batch_size=4)
    sol = result.solution
    tolerance = 0.0 if sol["activation"] == "measured" and sol["distance"] == 0 else 0.01
    assert stats.activation_ratio == pytest.approx(result.activation_ratio, abs=max(tolerance, 1e-9))
    ratio = math.exp(sparse.mean_nll - dense.mean_nll)
    assert abs(ratio - 1.01) <= 4 * sol["noise_sd"] + 2 * sol["standard_error"]


def test_a_result_json_is_accepted_as_thresholds(tmp_path, tiny_model, eval_data):
    result = measure(tiny_model, eval_data, MeasureConfig(metric="cett", cett=0.1))
    result.save(tmp_path / "r.json")
    assert Thresholds.load(tmp_path / "r.json").values == result.thresholds


def test_thresholds_of_another_model_are_refused(tiny_model, eval_data):
    result = measure(tiny_model, eval_data, MeasureConfig(metric="cett", cett=0.1))
    other = tiny_llama(layers=3)
    with pytest.raises(ModelError, match="measure thresholds on this model"), apply_thresholds(other, Thresholds.from_result(result)):
        pass
    wider = tiny_llama(inter=128)
    with pytest.raises(ModelError), apply_thresholds(wider, Thresholds.from_result(result)):
        pass


def test_results_without_thresholds_and_bad_files_are_refused(tmp_path, tiny_model, eval_data):
    with pytest.raises(ConfigError, match="no per-layer CETT thresholds"):
        Thresholds.from_result(measure(tiny_model, eval_data, MeasureConfig(metric="topk", ratio=0.5)))
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        Thresholds.load(tmp_path / "x.json")
    with pytest.raises(ConfigError, match="does not exist"):
        Thresholds.load(tmp_path / "missing.json")


def test_plain_list_of_thresholds(tiny_model):
    with torch.no_grad(), apply_thresholds(tiny_model, [1e9, 1e9]) as stats:
        tiny_model(input_ids=torch.zeros(1, 8, dtype=torch.long))
    assert stats.activation_ratio == 0.0


def test_thresholds_averaged_over_calibration_batches(tmp_path, tiny_model, eval_data):
    from sparsinglaw.data import EvalData
    from sparsinglaw.thresholds import calibrate_averaged

    config = MeasureConfig(metric="cett", cett=0.2)
    averaged = calibrate_averaged(tiny_model, eval_data, config, n_batches=2, model_type="llama")
    halves = [measure(tiny_model, EvalData(input_ids=ids), config) for ids in eval_data.input_ids.tensor_split(2)]
    expected = [(a + b) / 2 for a, b in zip(halves[0].thresholds, halves[1].thresholds)]
    assert averaged.values == pytest.approx(expected, rel=1e-12)
    assert averaged.values != halves[0].thresholds
    assert averaged.metric["averaged_over"] == 2 and len(averaged.metric["per_batch"]) == 2
    assert averaged.calibration["n_tokens"] == eval_data.n_tokens and averaged.calibration["batches"] == 2
    loaded = Thresholds.load(averaged.save(tmp_path / "avg.json"))
    assert loaded.values == averaged.values and loaded.metric == averaged.metric
    with apply_thresholds(tiny_model, loaded) as stats, torch.no_grad():
        tiny_model(input_ids=eval_data.input_ids[:2])
    assert 0.0 < stats.activation_ratio < 1.0
    other = Thresholds.from_result(measure(tiny_llama(inter=128), eval_data, config))
    with pytest.raises(ModelError, match="different FFNs"):
        Thresholds.average([averaged, other])
    with pytest.raises(ConfigError, match="n_batches"):
        calibrate_averaged(tiny_model, eval_data, config, n_batches=0)

"""Every metric through the measurement API on tiny models: what each one keeps, and the result object."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.errors import ConfigError, DataError
from sparsinglaw.measure import MeasureConfig, Measurement, default_sweep, measure, sweep
from sparsinglaw.metrics.topk import topk_mask
from sparsinglaw.results import MeasureResult


def test_topk_keeps_exactly_k_per_token(tiny_model, eval_data):
    result = measure(tiny_model, eval_data, MeasureConfig(metric="topk", ratio=0.25))
    k = round(0.25 * 160)
    assert result.activation_ratio == pytest.approx(k / 160)
    assert all(layer.activation_ratio == pytest.approx(k / 160) for layer in result.layers)
    assert result.ppl_ratio > 1.0


def test_topk_layer_scope_ranks_across_tokens():
    s = torch.tensor([[5.0, 4.0, 0.1, 0.2], [0.3, 0.4, 0.5, 0.6]])
    per_layer = topk_mask(s, 0.5, scope="layer")
    assert per_layer[0].tolist() == [True, True, False, False]
    assert per_layer.sum() == 4
    assert topk_mask(s, 0.5, scope="token").sum(dim=1).tolist() == [2, 2]


def test_fat_counts_match_a_direct_count(tiny_model, eval_data):
    eps = 0.05
    seen = []
    handles = [layer.mlp.act_fn.register_forward_hook(lambda m, a, out: seen.append((out.abs() >= eps).float().mean()))
               for layer in tiny_model.model.layers]
    with torch.no_grad():
        tiny_model(input_ids=eval_data.input_ids)
    for h in handles:
        h.remove()
    # The dense pass's |s| >= eps share, before sparsification changes later layers: check layer 0 only.
    measurement = Measurement(tiny_model, eval_data, MeasureConfig(metric="fat", epsilon=eps, batch_size=8))
    evaluation = measurement.at("fat", eps)
    assert evaluation.activity.layer_ratios()[0] == pytest.approx(float(seen[0]), abs=1e-6)


def test_zero_count_on_relu_needs_no_sparse_pass_and_changes_nothing():
    model, data = tiny_llama("relu"), random_eval_data()
    result = measure(model, data, MeasureConfig(metric="zero"))
    assert result.forward_passes == 1
    assert result.ppl_ratio == 1.0
    assert 0.3 < result.activation_ratio < 0.7  # about half of ReLU(Gaussian) outputs are zero


def test_zero_count_on_silu_sees_everything_active(tiny_model, eval_data):
    assert measure(tiny_model, eval_data, MeasureConfig(metric="zero")).activation_ratio == pytest.approx(1.0)


def test_result_round_trips_through_json(tmp_path, tiny_model, eval_data):
    result = measure(tiny_model, eval_data, MeasureConfig(metric="cett", cett=0.1, detail_tokens=5,
                                                          neuron_frequency=True))
    path = result.save(tmp_path / "r.json")
    loaded = MeasureResult.load(path)
    assert loaded.to_dict() == json.loads(path.read_text())
    assert loaded.thresholds == result.thresholds
    assert len(loaded.token_detail["layer_ratios"]) == 5
    assert len(loaded.neuron_frequency[0]) == 160
    assert {"versions", "git_hash", "date", "config"} <= set(loaded.provenance)
    assert "t_l" in loaded.table()


def test_measurement_is_deterministic(tiny_model, eval_data):
    one = measure(tiny_model, eval_data, MeasureConfig(metric="pplp", p=1.0))
    two = measure(tiny_model, eval_data, MeasureConfig(metric="pplp", p=1.0))
    assert one.activation_ratio == two.activation_ratio
    assert one.search == two.search
    assert one.interval == two.interval


def test_batch_size_does_not_change_results(tiny_model, eval_data):
    one = measure(tiny_model, eval_data, MeasureConfig(metric="cett", cett=0.1, batch_size=8))
    many = measure(tiny_model, eval_data, MeasureConfig(metric="cett", cett=0.1, batch_size=3))
    assert many.activation_ratio == pytest.approx(one.activation_ratio, abs=1e-4)
    assert many.dense_ppl == pytest.approx(one.dense_ppl, rel=1e-5)


def test_sweep_gives_points_for_each_metric(tiny_model, eval_data):
    values = default_sweep(["topk", "cett", "zero"])
    values["topk"], values["cett"] = [0.2, 0.6], [0.05, 0.2]
    points = sweep(tiny_model, eval_data, values)
    assert [p["metric"] for p in points] == ["topk", "topk", "cett", "cett", "zero"]
    cett = [p for p in points if p["metric"] == "cett"]
    assert cett[0]["activation_ratio"] > cett[1]["activation_ratio"]  # larger CETT drops more


def test_hooks_are_removed_after_measuring(tiny_model, eval_data):
    measure(tiny_model, eval_data, MeasureConfig(metric="cett", cett=0.1))
    for module in tiny_model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


@pytest.mark.parametrize("field,value", [("p", 0), ("p", -1), ("cett", 1.5), ("cett", -0.1), ("ratio", 0.0),
                                         ("ratio", 1.2), ("epsilon", -1.0), ("metric", "nope")])
def test_bad_settings_are_rejected_with_the_field_named(field, value):
    with pytest.raises(ConfigError, match=field if field != "metric" else "unknown metric"):
        MeasureConfig(**{field: value})


def test_device_map_auto_loads_and_measures(tmp_path):
    """accelerate's device_map path (CPU-only here: everything lands on the CPU) measures like a plain load."""
    from helpers import saved_tiny_model
    from sparsinglaw.data import build_eval_data, builtin_documents
    from sparsinglaw.models.loading import load_model

    path = saved_tiny_model(tmp_path / "m")
    mapped, tokenizer = load_model(str(path), device_map="auto")
    plain, _ = load_model(str(path))
    data = build_eval_data(tokenizer, builtin_documents()[:5], seq_len=32, max_tokens=256)
    config = MeasureConfig(metric="cett", cett=0.1)
    assert measure(mapped, data, config).activation_ratio == pytest.approx(measure(plain, data, config).activation_ratio)


def test_sweep_runs_one_dense_pass(tiny_model, eval_data):
    values = {"topk": [0.5], "cett": [0.1], "zero": []}
    calls = []
    original = Measurement.dense

    def counting(self, cett_curves):
        before = self.passes
        original(self, cett_curves)
        calls.append(self.passes - before)

    Measurement.dense = counting
    try:
        sweep(tiny_model, eval_data, values)
    finally:
        Measurement.dense = original
    assert sum(calls) == 1


def test_measure_takes_token_ids_and_texts_and_results_become_frames():
    model, data = tiny_llama("relu", seed=3), random_eval_data(n_sequences=4)
    config = MeasureConfig(metric="topk", ratio=0.5, batch_size=4)
    from_data = measure(model, data, config)
    from_ids = measure(model, data.input_ids.tolist(), config)  # nested lists of token ids
    assert from_ids.activation_ratio == from_data.activation_ratio and from_ids.data_source == "token ids"
    frame = from_data.to_frame()
    assert list(frame["name"]) == [layer.name for layer in from_data.layers]
    summary = from_data.to_frame("summary")
    assert summary.loc[0, "activation_ratio"] == from_data.activation_ratio
    assert "<table" in from_data._repr_html_()
    with pytest.raises(DataError, match="tokenizer"):
        measure(model, ["some text"], config)

"""Dead and live neurons: the live-neuron activation ratio, the never-active share and their intervals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.measure import MeasureConfig, Measurement, build_result

SILENCED = 24  # neurons of layer 0 whose gate rows are zeroed: relu(0) = 0 on every token


@pytest.fixture
def relu_model():
    model = tiny_llama("relu", seed=3)
    with torch.no_grad():
        model.model.layers[0].mlp.gate_proj.weight[:SILENCED] = 0.0
    return model


def _measured(model, per_sequence: bool, cett: float = 0.2):
    m = Measurement(model, random_eval_data(n_sequences=16), MeasureConfig(batch_size=4))
    m.per_sequence_neurons = per_sequence
    with torch.no_grad():
        evaluation = m.at("cett", cett)
    return m, evaluation


def test_per_sequence_counts_agree_with_the_fused_kernel(relu_model):
    _, fused = _measured(relu_model, per_sequence=False)
    _, by_rule = _measured(relu_model, per_sequence=True)
    assert by_rule.activity.activation_ratio == pytest.approx(fused.activity.activation_ratio, abs=1e-12)
    for a, b in zip(by_rule.activity.neuron_active, fused.activity.neuron_active):
        assert torch.equal(a, b)
    per_sequence = torch.cat(by_rule.activity.seq_neuron_active, dim=1).sum(dim=0)
    assert torch.equal(per_sequence, torch.cat(by_rule.activity.neuron_active))


def test_live_ratio_never_active_share_and_dead_ratio(relu_model):
    m, evaluation = _measured(relu_model, per_sequence=True)
    activity = evaluation.activity
    freqs = torch.cat(activity.neuron_frequency())
    live = freqs >= 1e-3
    assert activity.live_activation_ratio() == pytest.approx(float(freqs[live].mean()), rel=1e-12)
    dead, _ = activity.dead_ratio()
    assert dead >= SILENCED / freqs.numel()  # the silenced neurons are dead under any threshold
    assert activity.live_activation_ratio() > activity.activation_ratio  # the dead ones pulled the overall down
    # Never active in the dense pass: exactly the neurons whose gate pre-activation is never positive.
    gate_max = []
    hooks = [layer.mlp.gate_proj.register_forward_hook(lambda mod, i, out: gate_max.append(out.amax(dim=(0, 1))))
             for layer in relu_model.model.layers]
    with torch.no_grad():
        for _, ids in m.data.batches(16):
            relu_model(input_ids=ids, use_cache=False)
    for h in hooks:
        h.remove()
    never_positive = sum(int((g <= 0).sum()) for g in gate_max) / freqs.numel()
    assert m.dense_zero.never_active_ratio() == pytest.approx(never_positive)
    assert never_positive >= SILENCED / freqs.numel()
    result = build_result(m, evaluation, model_name="tiny")
    assert result.live_activation_ratio == pytest.approx(activity.live_activation_ratio())
    assert result.never_active_ratio == pytest.approx(never_positive)
    assert "live neurons" in result.table()


def test_population_interval_holds_the_estimates(relu_model):
    _, evaluation = _measured(relu_model, per_sequence=True)
    activity, n = evaluation.activity, 16
    # The identity resample reproduces the point estimates exactly.
    same = activity.population_interval(np.ones((2, n)), (0.0, 1.0))
    dead, _ = activity.dead_ratio()
    assert same["dead_neuron_ratio"] == pytest.approx([dead, dead])
    assert same["live_activation_ratio"] == pytest.approx([activity.live_activation_ratio()] * 2)
    weights = np.random.default_rng(0).multinomial(n, np.full(n, 1 / n), size=400).astype(float)
    interval = activity.population_interval(weights, (0.05, 0.95))
    lo, hi = interval["live_activation_ratio"]
    assert lo <= activity.live_activation_ratio() <= hi and lo < hi
    lo, hi = interval["dead_neuron_ratio"]
    assert lo <= dead <= hi
    # Without per-sequence counts there is no interval, not a made-up one.
    _, fused = _measured(relu_model, per_sequence=False)
    assert fused.activity.population_interval(weights, (0.05, 0.95)) is None

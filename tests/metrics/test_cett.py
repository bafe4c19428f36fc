"""CETT statistics from the single dense pass agree with the slow reference procedure."""

from __future__ import annotations

import pytest
import torch

import reference as R
from helpers import random_eval_data, tiny_llama
from sparsinglaw.capture.hooks import attach
from sparsinglaw.measure import MeasureConfig, Measurement, measure
from sparsinglaw.metrics.cett import CETTCurves, dropped_norm_ratio
from sparsinglaw.models import find_ffn_layers


def gather_curves(model, data, batch_size, anchor_stride=1):
    layers = find_ffn_layers(model)
    curves = CETTCurves(layers, anchor_stride=anchor_stride)
    with torch.no_grad(), attach(layers, curves.observe):
        for _, ids in data.batches(batch_size):
            model(input_ids=ids)
    return curves


@pytest.mark.parametrize("act", ["silu", "relu"])
@pytest.mark.parametrize("cett", [0.02, 0.1, 0.2])
def test_thresholds_match_reference(act, cett):
    model, data = tiny_llama(act), random_eval_data()
    curves = gather_curves(model, data, batch_size=8)
    hs, _ = R.dense_h(model, data.input_ids)
    for i, layer in enumerate(model.model.layers):
        reference = R.layer_threshold(hs[i], R.down_weight(layer.mlp), cett)
        assert curves.threshold(i, cett) == pytest.approx(reference, rel=0.01)


def test_exact_cett_at_anchor_matches_direct_matmul():
    model, data = tiny_llama(), random_eval_data()
    hs, _ = R.dense_h(model, data.input_ids)
    weight = R.down_weight(model.model.layers[0].mlp)
    t = float((hs[0].abs() * weight.norm(dim=0)).median())
    ours = dropped_norm_ratio(hs[0], weight.t(), weight.norm(dim=0), torch.tensor([t]), chunk=7).mean()
    assert float(ours) == pytest.approx(R.cett_at(hs[0], weight, t), rel=1e-5)


def test_streaming_batches_equal_one_batch():
    """Statistics are sums over tokens: 1 batch of 8 or 8 batches of 1 give the same thresholds."""
    model, data = tiny_llama(), random_eval_data()
    one = gather_curves(model, data, batch_size=8)
    many = gather_curves(model, data, batch_size=1)
    for c in (0.03, 0.1, 0.3):
        assert many.thresholds(c) == pytest.approx(one.thresholds(c), rel=1e-5)


def test_strided_anchors_are_sums_independent_of_batching():
    """The anchor sample depends on (sequence, position) only: batches of 1 or 8 give the same sums."""
    model, data = tiny_llama(), random_eval_data(seq_len=64)
    one = gather_curves(model, data, batch_size=8, anchor_stride=4)
    many = gather_curves(model, data, batch_size=1, anchor_stride=4)
    for i in range(len(one.layers)):
        assert many.anchor_exact[i].numpy() == pytest.approx(one.anchor_exact[i].numpy(), rel=1e-5)
        assert many.anchor_proxy[i].numpy() == pytest.approx(one.anchor_proxy[i].numpy(), rel=1e-5)


@pytest.mark.parametrize("act", ["silu", "relu"])
def test_strided_anchors_keep_exact_cett_near_target(act):
    """Anchors on every 4th position (and each first one): the exact CETT at the thresholds stays near the
    target, as with anchors on every token (benchmarks/bench_stats_pass.py measures it on SmolLM2)."""
    model, data = tiny_llama(act), random_eval_data(n_sequences=16, seq_len=64)
    full, strided = gather_curves(model, data, 8), gather_curves(model, data, 8, anchor_stride=4)
    hs, _ = R.dense_h(model, data.input_ids)
    for i, layer in enumerate(model.model.layers):
        weight = R.down_weight(layer.mlp)
        for c in (0.05, 0.15):
            exact = [float(R.cett_at(hs[i], weight, curves.threshold(i, c))) for curves in (full, strided)]
            assert abs(exact[1] / c - 1) <= max(0.03, 2 * abs(exact[0] / c - 1))


@pytest.mark.parametrize("act", ["silu", "relu"])
def test_fixed_cett_activation_ratio_matches_reference(act):
    model, data = tiny_llama(act), random_eval_data()
    ours = measure(model, data, MeasureConfig(metric="cett", cett=0.1, batch_size=8))
    ref = R.at_cett(model, data.input_ids, 0.1)
    assert ours.activation_ratio == pytest.approx(ref["activation_ratio"], abs=0.005)
    assert ours.ppl_ratio == pytest.approx(ref["ppl_ratio"], abs=2e-3)
    for mine, theirs in zip(ours.thresholds, ref["thresholds"]):
        assert mine == pytest.approx(theirs, rel=0.01)


def test_cett_zero_keeps_model_dense():
    model, data = tiny_llama(), random_eval_data()
    measurement = Measurement(model, data, MeasureConfig(metric="cett", cett=0.0))
    evaluation = measurement.at("cett", 0.0)
    assert measurement.ppl_ratio(evaluation) == pytest.approx(1.0, abs=1e-6)
    assert evaluation.activity.activation_ratio > 0.99


def tiny_gpt_neox():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    config = GPTNeoXConfig(vocab_size=256, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=96, hidden_act="relu", max_position_embeddings=64)
    model = GPTNeoXForCausalLM(config).eval()
    with torch.no_grad():  # a visible down-projection bias, which CETT's y must exclude
        for layer in model.gpt_neox.layers:
            layer.mlp.dense_4h_to_h.bias.normal_(0, 1.0)
    return model


@pytest.mark.parametrize("make", [tiny_llama, tiny_gpt_neox], ids=["llama", "gpt-neox-with-bias"])
def test_output_hook_statistics_equal_recomputed(make):
    """y read off the down projection's output (bias removed) gives the statistics recomputing it gives."""
    model, data = make(), random_eval_data()
    layers = find_ffn_layers(model)
    assert all(layer.observes_output for layer in layers)
    recomputed = gather_curves(model, data, batch_size=4)
    hooked = CETTCurves(layers)
    with torch.no_grad(), attach(layers, hooked.observe_output, output=True) as calls:
        for _, ids in data.batches(4):
            model(input_ids=ids)
    calls.require_called()
    for c in (0.03, 0.1, 0.3):
        assert hooked.thresholds(c) == pytest.approx(recomputed.thresholds(c), rel=1e-4)


def test_anchor_stride_from_the_tokens_keeps_every_token_until_the_sample_holds_anchor_tokens():
    from sparsinglaw.measure import MeasureConfig
    from sparsinglaw.metrics.cett import ANCHOR_TOKENS, auto_anchor_stride

    assert MeasureConfig().anchor_stride == 0  # the default: chosen from the token count
    assert [auto_anchor_stride(n) for n in (512, 2 * ANCHOR_TOKENS - 1)] == [1, 1]
    assert [auto_anchor_stride(n) for n in (2 * ANCHOR_TOKENS, 3 * ANCHOR_TOKENS, 100_000)] == [2, 3, 4]

"""A wrong activation is caught: the real SmolLM2 (trained with SiLU) measured as ReLU runs fine and gives a
believable sparsity, but the probe sees that its weights look like SiLU and says so. No false alarm where
the declared activation is the right one, and a declared activation that overrides the config's is named."""

from __future__ import annotations

import logging

import pytest

from helpers import smollm2_gguf_path, text_tokenizer, tiny_llama
from sparsinglaw.data import build_eval_data, builtin_documents
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.models.activation_probe import activation_warnings, probe_perplexities
from sparsinglaw.models.loading import load_model

FEW = MeasureConfig(metric="cett", cett=0.2, batch_size=2)


@pytest.fixture(scope="module")
def smollm2_as_relu():
    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("SmolLM2 GGUF not found: run ./dev test (it fetches it), or set SPARSINGLAW_SMOLLM2_GGUF")
    return load_model(str(path), hidden_act="relu")


def _few_tokens(tokenizer):
    return build_eval_data(tokenizer, builtin_documents()[:4], seq_len=64, max_tokens=128)  # 2 x 64 tokens


def test_smollm2_declared_relu_is_said_to_look_like_silu(smollm2_as_relu, smollm2):
    model, tokenizer = smollm2_as_relu
    data = _few_tokens(tokenizer)
    result = measure(model, data, FEW)
    assert result.dense_ppl < model.config.vocab_size  # the old guardrail (above the vocabulary) stays silent
    lines = [w for w in result.warnings if "look like" in w]
    assert len(lines) == 1 and "look like silu, not relu" in lines[0] and "--hidden-act silu" in lines[0], \
        result.warnings
    # The same weights with their own activation: SiLU gives by far the lowest perplexity, so no warning.
    right, _ = smollm2
    ppl = probe_perplexities(right, data.input_ids)
    assert set(ppl) == {"silu", "gelu_pytorch_tanh", "relu"}
    assert min(ppl, key=ppl.get) == "silu" and ppl["relu"] > 10 * ppl["silu"]
    assert result.dense_ppl == pytest.approx(ppl["relu"], rel=0.05)  # the probe's ReLU: the measured forward


def test_no_false_alarm_on_an_untrained_model():
    """Random weights favour no activation by a factor of 2: nothing is reported."""
    import torch

    for act in ("relu", "silu"):
        assert activation_warnings(tiny_llama(act), act, torch.randint(0, 256, (2, 64))) == []


def test_a_declared_activation_overriding_the_config_is_named(tmp_path, caplog):
    path = tmp_path / "silu"
    tokenizer = text_tokenizer()
    tiny_llama("silu", vocab=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    with caplog.at_level(logging.WARNING, logger="sparsinglaw"):
        load_model(str(path), hidden_act="relu")
    assert any("--hidden-act relu overrides the activation silu" in r.getMessage() for r in caplog.records)


def test_the_probe_reads_the_model_own_activation_from_the_dense_pass(smollm2):
    """``measure`` hands the probe the dense pass's perplexity on its window: equal to the probe's own forward
    with the model's activation, so that forward is not run again."""
    from sparsinglaw.measure import Measurement, _probe_ppl

    model, tokenizer = smollm2
    for seq_len in (48, 100):  # the window is the whole sequence, or its first 64 positions
        data = build_eval_data(tokenizer, builtin_documents()[:8], seq_len=seq_len, max_tokens=3 * seq_len)
        measurement = Measurement(model, data, FEW)
        measurement.dense(cett_curves=False)
        own = probe_perplexities(model, data.input_ids, ("silu",))["silu"]
        assert _probe_ppl(measurement) == pytest.approx(own, rel=1e-4)

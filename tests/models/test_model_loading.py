"""load_model: local directories, hub ids (offline), GGUF activation handling, and one-line errors."""

from __future__ import annotations

import logging

import pytest
import torch
from tinymodels import build, tiny_tokenizer, token_ids

from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.models import loading
from sparsinglaw.models.loading import load_model

LLAMA = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A tiny Llama saved as safetensors with a tokenizer, and its reference logits."""
    path = tmp_path_factory.mktemp("llama")
    model = build("LlamaConfig", "LlamaForCausalLM", **LLAMA)
    model.save_pretrained(path, safe_serialization=True)
    tiny_tokenizer().save_pretrained(path)
    with torch.no_grad():
        return path, model(token_ids()).logits


def test_local_directory_roundtrip(llama_dir):
    path, reference = llama_dir
    model, tokenizer = load_model(str(path))
    assert not model.training and model.dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(model(token_ids()).logits, reference)
    assert tokenizer("w5 w7").input_ids[-2:] == [5, 7]


def test_hidden_act_override_and_validation(llama_dir):
    path, _ = llama_dir
    model, _ = load_model(path, hidden_act="relu")
    assert model.config.hidden_act == "relu"
    assert type(model.model.layers[0].mlp.act_fn).__name__ == "ReLU"
    with pytest.raises(ConfigError, match="hidden_act 'swishy' is not a known activation"):
        load_model(path, hidden_act="swishy")


def test_set_activation_covers_each_family_field():
    from transformers import FalconConfig, Gemma2Config, GPT2Config, OPTConfig

    for config, field in ((GPT2Config(), "activation_function"), (OPTConfig(), "activation_function"),
                          (FalconConfig(), "activation"), (Gemma2Config(), "hidden_activation")):
        loading.set_activation(config, "relu")
        assert getattr(config, field) == "relu"
        assert loading.activation_of(config) == (field, "relu")


def _one_line_model_error(spec, match, **kw):
    with pytest.raises(ModelError, match=match) as err:
        load_model(spec, **kw)
    assert "\n" not in str(err.value)


def test_missing_paths(tmp_path):
    _one_line_model_error(str(tmp_path / "nope"), "does not exist")
    _one_line_model_error(str(tmp_path / "model.gguf"), "does not exist")
    _one_line_model_error("./relative/missing/dir", "does not exist")


def test_hub_id_offline_is_an_error():
    _one_line_model_error("sparsinglaw-test/no-such-model", "cannot load sparsinglaw-test/no-such-model")


def test_not_a_causal_lm(tmp_path):
    bert = build("BertConfig", "BertForMaskedLM", hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                 intermediate_size=48, max_position_embeddings=64)
    bert.save_pretrained(tmp_path)
    _one_line_model_error(tmp_path, r"bert \(BertForMaskedLM\) model, not a decoder-only causal LM")


def test_unreadable_files(tmp_path):
    garbage = tmp_path / "broken.gguf"
    garbage.write_bytes(b"not a gguf file at all" * 10)
    _one_line_model_error(garbage, "cannot read GGUF file")
    text = tmp_path / "weights.txt"
    text.write_text("hello")
    _one_line_model_error(text, "not a .gguf")
    broken_dir = tmp_path / "broken_dir"
    build("LlamaConfig", "LlamaForCausalLM", **LLAMA).config.save_pretrained(broken_dir)
    (broken_dir / "model.safetensors").write_bytes(b"\x00garbage")
    _one_line_model_error(broken_dir, "cannot load the model in")
    bad_json = tmp_path / "bad_json"
    bad_json.mkdir()
    (bad_json / "config.json").write_text("{not json")
    _one_line_model_error(bad_json, "cannot read .*config.json")


def test_remote_code_is_opt_in(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"model_type": "sparsinglaw_custom", "auto_map": {"AutoConfig": "configuration_x.XConfig", '
        '"AutoModelForCausalLM": "modeling_x.XForCausalLM"}}'
    )
    _one_line_model_error(tmp_path, "--trust-remote-code")


def test_gguf_without_activation_warns_and_with_one_sets_it(monkeypatch, tmp_path, caplog):
    """The GGUF branch, with transformers' loaders stubbed (the real GGUF test is test_smollm2_gguf.py)."""
    from transformers import LlamaConfig

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"stub")
    configs = []
    monkeypatch.setattr(loading, "_load_config", lambda *a: configs.append(LlamaConfig(**LLAMA)) or configs[-1])
    monkeypatch.setattr(loading, "_load_weights", lambda source, *a: torch.nn.Linear(1, 1).train())
    monkeypatch.setattr(loading, "load_tokenizer", lambda source, *a, **k: source)
    with caplog.at_level(logging.WARNING, logger="sparsinglaw.models"):
        model, source = load_model(gguf)
    assert source == loading.ModelSource("gguf", str(tmp_path.resolve()), "tiny.gguf") and not model.training
    assert "does not record the FFN activation" in caplog.text and "hidden_act='silu'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sparsinglaw.models"):
        load_model(gguf, hidden_act="relu")
    assert configs[-1].hidden_act == "relu" and "does not record" not in caplog.text

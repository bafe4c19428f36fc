"""The MiniCPM checkpoint format (the study's released models) loads without remote code, exactly.

A tiny random checkpoint is written in that format (config.json with model_type "minicpm" and the muP
fields, Llama-style weight names in model.safetensors) and loaded through ``load_model``, which maps it onto
Granite. Its logits must match an independent implementation of the MiniCPM forward written here from the
formulas (embedding * scale_emb; residual + f(x) * scale_depth / sqrt(L); logits = lm_head(h / (d / d_base))).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file
from tinymodels import tiny_tokenizer, token_ids

from sparsinglaw.models import find_ffn_layers
from sparsinglaw.models.loading import load_model

CONFIG = dict(model_type="minicpm", architectures=["MiniCPMForCausalLM"],
              auto_map={"AutoModelForCausalLM": "modeling_minicpm.MiniCPMForCausalLM"},
              hidden_size=64, num_hidden_layers=3, intermediate_size=160, num_attention_heads=4,
              num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=128, rope_theta=10000.0,
              max_position_embeddings=128, scale_emb=12.0, scale_depth=1.4, dim_model_base=16)


def write_minicpm_checkpoint(path, config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """config.json + model.safetensors (+ tokenizer) in MiniCPM format; returns the weights."""
    g = torch.Generator().manual_seed(seed)
    d, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = d // config["num_attention_heads"] * config["num_key_value_heads"]

    def rand(*shape, scale=0.08):
        return torch.randn(*shape, generator=g) * scale

    weights = {"model.embed_tokens.weight": rand(v, d, scale=0.05), "model.norm.weight": 1 + rand(d, scale=0.1)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        weights |= {
            p + "input_layernorm.weight": 1 + rand(d, scale=0.1),
            p + "post_attention_layernorm.weight": 1 + rand(d, scale=0.1),
            p + "self_attn.q_proj.weight": rand(d, d), p + "self_attn.k_proj.weight": rand(kv, d),
            p + "self_attn.v_proj.weight": rand(kv, d), p + "self_attn.o_proj.weight": rand(d, d),
            p + "mlp.gate_proj.weight": rand(f, d), p + "mlp.up_proj.weight": rand(f, d),
            p + "mlp.down_proj.weight": rand(d, f),
        }
    if not config["tie_word_embeddings"]:
        weights["lm_head.weight"] = rand(v, d, scale=0.3)
    path.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config))
    tiny_tokenizer(config["vocab_size"]).save_pretrained(path)
    return weights


def minicpm_forward(w: dict[str, torch.Tensor], c: dict, ids: torch.Tensor) -> torch.Tensor:
    """MiniCPM's forward from its formulas, in float64, sharing no code with transformers."""
    w = {k: t.double() for k, t in w.items()}
    d, n_layers, heads, kv_heads = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], \
        c["num_key_value_heads"]
    hd, (batch, length) = d // heads, ids.shape
    act = {"silu": torch.nn.functional.silu, "relu": torch.relu}[c["hidden_act"]]
    inv_freq = 1.0 / c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None]
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)

    def rope(t):
        return t * cos + torch.cat([-t[..., hd // 2:], t[..., : hd // 2]], -1) * sin

    def rms(x, weight):
        return weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + c["rms_norm_eps"])

    def heads_of(x, n):
        return x.view(batch, length, n, hd).transpose(1, 2).repeat_interleave(heads // n, dim=1)

    causal = torch.full((length, length), float("-inf"), dtype=torch.float64).triu(1)
    residual_scale = c["scale_depth"] / math.sqrt(n_layers)
    x = w["model.embed_tokens.weight"][ids] * c["scale_emb"]
    for i in range(n_layers):
        p = f"model.layers.{i}."
        a = rms(x, w[p + "input_layernorm.weight"])
        q = rope(heads_of(a @ w[p + "self_attn.q_proj.weight"].T, heads))
        k = rope(heads_of(a @ w[p + "self_attn.k_proj.weight"].T, kv_heads))
        v = heads_of(a @ w[p + "self_attn.v_proj.weight"].T, kv_heads)
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + causal, dim=-1) @ v
        x = x + attn.transpose(1, 2).reshape(batch, length, d) @ w[p + "self_attn.o_proj.weight"].T * residual_scale
        m = rms(x, w[p + "post_attention_layernorm.weight"])
        ffn = (act(m @ w[p + "mlp.gate_proj.weight"].T) * (m @ w[p + "mlp.up_proj.weight"].T))
        x = x + ffn @ w[p + "mlp.down_proj.weight"].T * residual_scale
    x = rms(x, w["model.norm.weight"])
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    return (x / (d / c["dim_model_base"])) @ head.T


@pytest.mark.parametrize("tied, act", [(True, "silu"), (False, "relu")])
def test_minicpm_checkpoint_matches_direct_implementation(tmp_path, tied, act):
    config = dict(CONFIG, tie_word_embeddings=tied, hidden_act=act)
    weights = write_minicpm_checkpoint(tmp_path / "ckpt", config)
    model, tokenizer = load_model(tmp_path / "ckpt")  # no trust_remote_code
    assert type(model).__name__ == "GraniteForCausalLM" and not model.training
    ids = token_ids(batch=2, length=16)
    with torch.no_grad():
        logits = model(ids).logits
    expected = minicpm_forward(weights, config, ids)
    assert expected.abs().max() > 0.2, "the test model must produce non-trivial logits"
    assert (logits.double() - expected).abs().max().item() < 1e-4
    layers = find_ffn_layers(model)
    assert len(layers) == config["num_hidden_layers"] and layers[0].width == config["intermediate_size"]
    assert tokenizer("w9").input_ids[-1] == 9


def test_minicpm_config_mapping_values():
    from sparsinglaw.models.minicpm import minicpm_to_granite_config

    granite = minicpm_to_granite_config(dict(CONFIG, tie_word_embeddings=True, hidden_act="silu"))
    assert granite.embedding_multiplier == 12.0
    assert granite.residual_multiplier == pytest.approx(1.4 / math.sqrt(3))
    assert granite.logits_scaling == pytest.approx(64 / 16)
    assert granite.attention_multiplier == pytest.approx(1 / math.sqrt(16))
    assert granite.tie_word_embeddings and granite.num_key_value_heads == 2

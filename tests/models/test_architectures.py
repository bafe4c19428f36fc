"""One registry of architectures: every registered architecture finds both its FFN neurons and its
projections on a real (tiny, random) model of its family; the old layout names resolve as aliases; an
architecture without a projection layout cannot be registered."""

from __future__ import annotations

import pytest
import torch
from tinymodels import build

from sparsinglaw.errors import ConfigError
from sparsinglaw.models import adapter_for, architecture, find_ffn_layers, registered_adapters
from sparsinglaw.models.architectures import ARCHITECTURES, Architecture, register_architecture
from sparsinglaw.models.projections import _LAYOUTS, find_projections, projection_layout

LLAMA_LIKE = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64)
# one tiny model per family a registered architecture covers: (config class, model class, config fields)
FAMILY_MODELS = {
    "llama-family": [("LlamaConfig", "LlamaForCausalLM", LLAMA_LIKE),
                     ("Phi3Config", "Phi3ForCausalLM", dict(LLAMA_LIKE, pad_token_id=0))],
    "gpt2": [("GPT2Config", "GPT2LMHeadModel", dict(n_embd=32, n_layer=2, n_head=4, n_positions=64))],
    "gpt-neox": [("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(hidden_size=32, intermediate_size=80,
                  num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64))],
    "opt": [("OPTConfig", "OPTForCausalLM", dict(hidden_size=32, ffn_dim=72, num_hidden_layers=2,
             num_attention_heads=4, word_embed_proj_dim=32, max_position_embeddings=64, pad_token_id=1))],
    "falcon": [("FalconConfig", "FalconForCausalLM", dict(hidden_size=32, num_hidden_layers=2,
                num_attention_heads=4, ffn_hidden_size=88, bias=True))],
    "moe": [("MixtralConfig", "MixtralForCausalLM", dict(LLAMA_LIKE, num_local_experts=4))],
}


def test_every_architecture_has_a_tiny_model_here():
    assert sorted(ARCHITECTURES.names()) == sorted(FAMILY_MODELS)


@pytest.mark.parametrize("name", sorted(FAMILY_MODELS))
def test_every_registered_architecture_supports_both_targets(name):
    arch = architecture(name)
    for config_cls, model_cls, fields in FAMILY_MODELS[name]:
        model = build(config_cls, model_cls, **fields)
        ffns = find_ffn_layers(model)
        projections = find_projections(model)
        assert adapter_for(model) is arch.adapter and projection_layout(model) in arch.layouts
        assert len(ffns) >= 2 and len(projections) >= 2 * 2  # two blocks, two or more projections each
        assert {p.block for p in projections} == {0, 1}
        with torch.no_grad():
            assert torch.isfinite(model(input_ids=torch.tensor([[1, 2, 3]])).logits).all()


def test_the_indexes_hold_exactly_the_architectures_parts():
    adapters = {id(arch.adapter) for arch in ARCHITECTURES.values()}
    layouts = {id(layout) for arch in ARCHITECTURES.values() for layout in arch.layouts}
    assert {id(a) for a in registered_adapters().values()} == adapters
    assert {id(layout) for layout in _LAYOUTS.values()} == layouts


def test_old_names_are_aliases():
    assert architecture("gpt_neox") is architecture("gpt-neox")
    assert architecture("moe-attention") is architecture("moe")
    assert architecture("phi3").name == "llama-family"
    with pytest.raises(ConfigError, match="unknown architecture 'mamba'; known: falcon, gpt-neox"):
        architecture("mamba")


def test_an_architecture_without_projections_is_refused():
    with pytest.raises(ValueError, match="no projection layout"):
        register_architecture(Architecture("ffn-only", ARCHITECTURES.get("gpt2").adapter, ()))
    assert "ffn-only" not in ARCHITECTURES

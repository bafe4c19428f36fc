"""Every dense family: the FFNLayer contract holds on a tiny random model of that family.

For each family the test checks the layer count and widths, that the ``h`` the callback sees reproduces the
down projection's output (``W_down @ h + bias``), that ``s`` is the activation output (recomputed here from
the FFN's own input projections), that a returned tensor replaces ``h`` and None changes nothing bitwise, and
that removing the handles leaves no hook behind.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tinymodels import build, no_hooks_left, token_ids
from torch import nn

from sparsinglaw.errors import ModelError
from sparsinglaw.models import adapter_for, find_ffn_layers, register_adapter
from sparsinglaw.models import adapters as adapters_module

LLAMA_LIKE = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64)


def gated_ref(mlp, x):
    s = mlp.act_fn(mlp.gate_proj(x))
    return s * mlp.up_proj(x), s


def phi3_ref(mlp, x):
    gate, up = mlp.gate_up_proj(x).chunk(2, dim=-1)
    s = mlp.activation_fn(gate)
    return up * s, s


def nongated_ref(in_name, act_name):
    def ref(ffn, x):
        h = getattr(ffn, act_name)(getattr(ffn, in_name)(x))
        return h, h
    return ref


# family: (config class, model class, config fields, FFN owner in a block, input module, reference, d_f, gated)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", LLAMA_LIKE, "mlp", "gate_proj", gated_ref, 48, True),
    "mistral": ("MistralConfig", "MistralForCausalLM", LLAMA_LIKE, "mlp", "gate_proj", gated_ref, 48, True),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", LLAMA_LIKE, "mlp", "gate_proj", gated_ref, 48, True),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(LLAMA_LIKE, head_dim=8), "mlp", "gate_proj", gated_ref,
              48, True),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", dict(LLAMA_LIKE, head_dim=8, hidden_act="gelu_pytorch_tanh"),
              "mlp", "gate_proj", gated_ref, 48, True),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(LLAMA_LIKE, pad_token_id=0), "mlp", "gate_up_proj", phi3_ref,
             48, True),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_embd=32, n_layer=2, n_head=4, n_positions=64), "mlp",
             "c_fc", nongated_ref("c_fc", "act"), 128, False),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM",
                 dict(hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                      max_position_embeddings=64), "mlp", "dense_h_to_4h", nongated_ref("dense_h_to_4h", "act"),
                 80, False),
    "opt": ("OPTConfig", "OPTForCausalLM",
            dict(hidden_size=32, ffn_dim=72, num_hidden_layers=2, num_attention_heads=4, word_embed_proj_dim=32,
                 max_position_embeddings=64, pad_token_id=1), "", "fc1", nongated_ref("fc1", "activation_fn"),
            72, False),
    "falcon": ("FalconConfig", "FalconForCausalLM",
               dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_hidden_size=88, bias=True),
               "mlp", "dense_h_to_4h", nongated_ref("dense_h_to_4h", "act"), 88, False),
}


def _blocks(model):
    return adapters_module.decoder_blocks(model)


def _capture(model, layers, owner, in_name):
    """Attach a recording callback to every layer plus probes for the FFN input and the down output."""
    seen: dict[int, dict] = {layer.index: {} for layer in layers}
    handles = []

    def callback(layer, h, s):
        seen[layer.index].update(h=h.detach().clone(), s=s, s_is_h=s is h)

    for layer, block in zip(layers, _blocks(model)):
        ffn = getattr(block, owner) if owner else block
        record = seen[layer.index]
        handles.append(getattr(ffn, in_name).register_forward_pre_hook(
            lambda _m, args, record=record: record.__setitem__("x", args[0].detach().clone())))
        handles.append(layer.down.register_forward_hook(
            # clone: Falcon adds the attention output to the FFN output in place afterwards
            lambda _m, _a, out, record=record: record.__setitem__("y", out.detach().clone())))
        handles.append(layer.attach(callback))
    return seen, handles


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_dense_family_contract(family):
    config_cls, model_cls, fields, owner, in_name, reference, width, gated = FAMILIES[family]
    model = build(config_cls, model_cls, **fields)
    ids = token_ids()
    with torch.no_grad():
        baseline = model(ids).logits
    layers = find_ffn_layers(model)
    assert [layer.block for layer in layers] == [0, 1]
    assert all(layer.width == width and layer.gated == gated for layer in layers)
    assert all(layer.down_weight().shape == (fields.get("hidden_size", 32), width) for layer in layers)
    if family == "gemma":
        assert type(layers[0].act).__name__ == "GELUTanh"  # the tanh approximation, not exact GELU

    seen, handles = _capture(model, layers, owner, in_name)
    with torch.no_grad():
        hooked = model(ids).logits
    for layer, block in zip(layers, _blocks(model)):
        record = seen[layer.index]
        bias = getattr(layer.down, "bias", None)
        y = record["h"] @ layer.down_weight().T + (bias if bias is not None else 0)
        torch.testing.assert_close(y, record["y"], rtol=1e-5, atol=1e-5)
        ref_h, ref_s = reference(getattr(block, owner) if owner else block, record["x"])
        torch.testing.assert_close(record["h"], ref_h, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(record["s"], ref_s, rtol=1e-5, atol=1e-6)
        assert record["s_is_h"] == (not gated)
    assert torch.equal(hooked, baseline), "a callback returning None must leave the logits bitwise unchanged"
    for handle in handles:
        handle.remove()
    assert no_hooks_left(model)

    handles = [layer.attach(lambda _l, h, _s: h * 0) for layer in layers]
    with torch.no_grad():
        zeroed = model(ids).logits
    for handle in handles:
        handle.remove()
    assert not torch.allclose(zeroed, baseline, atol=1e-4), "a returned h must replace the dense one"
    assert no_hooks_left(model)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, baseline)


def test_gpt2_down_weight_is_conv1d_transposed():
    model = build("GPT2Config", "GPT2LMHeadModel", n_embd=32, n_layer=2, n_head=4, n_positions=64)
    layer = find_ffn_layers(model)[0]
    c_proj = model.transformer.h[0].mlp.c_proj
    assert c_proj.weight.shape == (128, 32)  # Conv1D stores (d_f, d_model)
    assert torch.equal(layer.down_weight(), c_proj.weight.T)
    assert torch.allclose(layer.down_column_norms(), c_proj.weight.norm(dim=1))


def test_unknown_architecture_names_class_and_how_to_register():
    model = build("BertConfig", "BertForMaskedLM", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=48, max_position_embeddings=64)
    with pytest.raises(ModelError) as err:
        find_ffn_layers(model)
    message = str(err.value)
    assert "BertForMaskedLM" in message and "model_type='bert'" in message
    assert "register_adapter" in message and "\n" not in message


class _ToyLM(nn.Module):
    """A custom (non-transformers) model: a config with a model_type and one ReLU FFN."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(model_type="sparsinglaw-test-toy")
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))])

    def forward(self, x):
        return self.layers[0](x)


class _ToyAdapter(adapters_module.FFNAdapter):
    name = "sparsinglaw-test-toy"
    model_types = ("sparsinglaw-test-toy",)

    def find_layers(self, model):
        down = model.layers[0][2]
        return [adapters_module.ModuleFFNLayer(index=0, name="layers.0", block=0, width=16, gated=False, down=down,
                                               act=None, weight_fn=adapters_module.linear_weight(down))]


def test_custom_module_error_then_registered_adapter(monkeypatch):
    model = _ToyLM()
    with pytest.raises(ModelError, match=r"_ToyLM .*register_adapter"):
        adapter_for(model)
    monkeypatch.setattr(adapters_module, "_REGISTRY", adapters_module._REGISTRY.copy())
    register_adapter(_ToyAdapter())
    layers = find_ffn_layers(model)
    x = torch.randn(3, 8)
    handle = layers[0].attach(lambda _l, h, _s: torch.zeros_like(h))
    out = model(x)
    handle.remove()
    assert torch.allclose(out, model.layers[0][2].bias.expand(3, 8))
    assert no_hooks_left(model)

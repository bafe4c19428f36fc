"""The real SmolLM2-135M-Instruct (Q4_1 GGUF, llama architecture, SiLU) through load_model (the session's
shared load, see tests/conftest.py; skipped when the GGUF is absent)."""

from __future__ import annotations

import pytest
import torch

from sparsinglaw.models import find_ffn_layers

pytestmark = pytest.mark.realmodel


def test_smollm2_gguf_loads_warns_and_hooks(smollm2_load):
    model, tokenizer = smollm2_load["model"], smollm2_load["tokenizer"]
    warned = " ".join(smollm2_load["warnings"])  # loaded without hidden_act: the default is assumed, loudly
    assert "does not record the FFN activation" in warned and "hidden_act='silu'" in warned
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training and model.dtype == torch.float32

    layers = find_ffn_layers(model)
    assert len(layers) == 30 and {layer.width for layer in layers} == {1536}
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        dense = model(ids).logits
    assert tokenizer.decode(dense[0, -1].argmax()).strip() == "Paris"

    mlp = model.model.layers[3].mlp
    seen = {}
    handle = layers[3].attach(lambda _l, h, s: seen.update(h=h, s=s))
    probe = mlp.down_proj.register_forward_hook(lambda _m, _a, out: seen.update(y=out))
    with torch.no_grad():
        hooked = model(ids).logits
    handle.remove()
    probe.remove()
    assert torch.equal(hooked, dense)
    torch.testing.assert_close(seen["h"] @ layers[3].down_weight().T, seen["y"], rtol=1e-4, atol=1e-4)
    assert (seen["s"] < 0).any(), "SiLU gate outputs go negative; s must be the activation output, not h"

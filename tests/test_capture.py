"""Hooks always detach, and fail loudly when nothing attaches or nothing fires."""

from __future__ import annotations

import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.capture.hooks import attach
from sparsinglaw.capture.passes import run_pass
from sparsinglaw.errors import ModelError, NumericalError
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.models import find_ffn_layers


def no_hooks(model) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_hooks_detach_even_when_the_forward_raises(tiny_model):
    layers = find_ffn_layers(tiny_model)

    def boom(layer, h, s):
        raise RuntimeError("inside the forward")

    with pytest.raises(RuntimeError, match="inside the forward"), attach(layers, boom):
        tiny_model(input_ids=torch.zeros(1, 4, dtype=torch.long))
    assert no_hooks(tiny_model)


def test_nothing_to_attach_is_an_error():
    with pytest.raises(ModelError, match="no FFN layers"), attach([], lambda *a: None):
        pass


def test_hooks_that_never_fire_are_reported(tiny_model):
    layers = find_ffn_layers(tiny_model)
    with attach(layers, lambda *a: None) as calls:
        pass  # no forward: as if a fused kernel bypassed every hooked module
    with pytest.raises(ModelError, match="never fired"):
        calls.require_called()


def test_callback_sees_h_and_s_of_the_gated_ffn(tiny_model):
    layers = find_ffn_layers(tiny_model)
    mlp = tiny_model.model.layers[0].mlp
    seen = {}

    def grab(layer, h, s):
        if layer.index == 0:
            seen["h"], seen["s"] = h.clone(), s.clone()

    x = torch.randn(1, 5, 64)
    with torch.no_grad(), attach(layers, grab):
        y = mlp(x)
    assert torch.allclose(seen["s"], mlp.act_fn(mlp.gate_proj(x)))
    assert torch.allclose(seen["h"], seen["s"] * mlp.up_proj(x))
    assert torch.allclose(y, seen["h"] @ layers[0].down_weight().t(), atol=1e-6)


def test_nan_loss_is_a_clear_error():
    model, data = tiny_llama(), random_eval_data()
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight[0, 0] = float("nan")
    with pytest.raises(NumericalError, match="NaN or infinite"):
        run_pass(model, data, batch_size=4)
    with pytest.raises(NumericalError):
        measure(model, data, MeasureConfig(metric="zero"))

"""Shapes from (N, r) with N = 11.5 d^2 L, and the transformers models built from them."""

from __future__ import annotations

import math

import pytest
import torch

from sparsinglaw.train.config import ModelConfig
from sparsinglaw.train.modeling import build_model, count_parameters, describe
from sparsinglaw.train.shapes import coefficient, resolve_shape

# docs/paper.md section 4: the 0.1B width-depth sweep and the scale series (d x L).
PAPER_SHAPES = [(128, 575), (256, 144), (384, 64), (512, 36), (768, 16), (896, 12), (1024, 9), (1152, 7),
                (1280, 6), (1408, 5), (1536, 4), (1792, 3), (2048, 2), (1024, 20), (1280, 24), (1536, 28),
                (1792, 32), (2304, 40)]


@pytest.mark.parametrize(("d", "layers"), PAPER_SHAPES)
def test_paper_shapes_from_budget_and_ratio(d, layers):
    shape = resolve_shape(ModelConfig(n_params=11.5 * d * d * layers, ratio=d / layers))
    assert (shape.hidden_size, shape.num_layers, shape.intermediate_size) == (d, layers, round(2.5 * d))
    assert shape.formula_params() == pytest.approx(11.5 * d * d * layers)


@pytest.mark.parametrize(("ratio", "d", "layers"), [(48, 768, 16), (114, 1024, 9)])
def test_round_budget_gives_paper_shape(ratio, d, layers):
    shape = resolve_shape(ModelConfig(n_params=1.1e8, ratio=ratio))
    assert (shape.hidden_size, shape.num_layers) == (d, layers)


def test_coefficient():
    assert coefficient(True, 2.5) == 11.5
    assert coefficient(False, 2.5) == 9.0


def test_explicit_shape_and_heads():
    shape = resolve_shape(ModelConfig(hidden_size=96, num_layers=3, intermediate_size=200, num_heads=6))
    assert (shape.hidden_size, shape.num_layers, shape.intermediate_size, shape.head_dim) == (96, 3, 200, 16)


def test_paper_model_parameter_count_on_meta():
    info = describe(ModelConfig(n_params=1.1e8, ratio=48, mup=True), vocab_size=32000, max_positions=4096)
    shape = info["shape"]
    norms = (2 * shape["num_layers"] + 1) * shape["hidden_size"]  # RMSNorm weights are non-embedding too
    assert info["parameters"]["non_embedding"] == shape["formula_non_embedding_params"] + norms
    assert info["parameters"]["embedding"] == 32000 * 768  # tied: counted once


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("activation", ["relu", "silu", "gelu", "relu2"])
def test_every_activation_builds_and_runs(activation, gated):
    cfg = ModelConfig(activation=activation, gated=gated, hidden_size=32, num_layers=2, head_dim=16)
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=64, max_positions=16, eos_id=0)
    out = model(input_ids=torch.randint(0, 64, (2, 8)), labels=torch.randint(0, 64, (2, 8)))
    assert torch.isfinite(out.loss)
    assert model.config.hidden_act == activation
    assert type(model).__name__ == ("LlamaForCausalLM" if gated else "GPTNeoXForCausalLM")
    assert count_parameters(model)["non_embedding"] > 0


def test_mup_scalings_use_granite_multipliers():
    cfg = ModelConfig(hidden_size=64, num_layers=4, head_dim=16, mup=True, scale_emb=12, scale_depth=1.4,
                      dim_model_base=16)
    model = build_model(cfg, vocab_size=64, max_positions=16, eos_id=0)
    c = model.config
    assert type(model).__name__ == "GraniteForCausalLM"
    assert c.embedding_multiplier == 12
    assert c.residual_multiplier == pytest.approx(1.4 / math.sqrt(4))
    assert c.logits_scaling == pytest.approx(64 / 16)
    assert c.attention_multiplier == pytest.approx(16**-0.5)

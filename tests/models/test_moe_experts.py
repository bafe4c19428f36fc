"""Mixture-of-experts: one FFNLayer per expert, seeing only the tokens the router sent to it.

transformers fuses experts into 3-D parameters; the MoE adapter plugs in the ``sparsinglaw_recording``
experts implementation. Checked on tiny random Mixtral, OLMoE and Qwen2-MoE (which adds a shared expert).
"""

from __future__ import annotations

import pytest
import torch
from tinymodels import build, no_hooks_left, token_ids

from sparsinglaw.data.batches import as_eval_data
from sparsinglaw.measure import MeasureConfig, Measurement, measure
from sparsinglaw.models import ExpertFFNLayer, find_ffn_layers
from sparsinglaw.models import moe as moe_module

COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=64, num_experts_per_tok=2, tie_word_embeddings=False)
# family: (config class, model class, extra config fields, experts per block, d_f, MoE blocks, dense FFNs)
# Qwen2-MoE adds a shared expert per block; this Qwen3-MoE has a dense block 1 (mlp_only_layers).
FAMILIES = {
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", dict(num_local_experts=4, intermediate_size=24), 4, 24,
                2, 0),
    "olmoe": ("OlmoeConfig", "OlmoeForCausalLM", dict(num_experts=4, intermediate_size=24), 4, 24, 2, 0),
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM",
                  dict(num_experts=4, moe_intermediate_size=24, intermediate_size=40,
                       shared_expert_intermediate_size=40), 4, 24, 2, 2),
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM",
                  dict(num_experts=4, moe_intermediate_size=24, intermediate_size=40, head_dim=8,
                       mlp_only_layers=[1]), 4, 24, 1, 1),
}


def _model(family):
    config_cls, model_cls, extra, *_ = FAMILIES[family]
    return build(config_cls, model_cls, **COMMON, **extra)


def _routing_probe(model):
    """Pre-hooks on each experts module recording (hidden_states, top_k_index) of the last forward."""
    routes, handles = {}, []
    for block_index, block in enumerate(model.model.layers):
        if not hasattr(block.mlp, "experts"):
            continue

        def probe(_m, args, block_index=block_index):
            routes[block_index] = (args[0].detach().clone(), args[1].detach().clone())
        handles.append(block.mlp.experts.register_forward_pre_hook(probe))
    return routes, handles


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_per_expert_layers_see_only_routed_tokens(family):
    *_, n_experts, width, moe_blocks, dense = FAMILIES[family]
    model = _model(family)
    ids = token_ids()
    layers = find_ffn_layers(model)
    assert model.config._experts_implementation == moe_module.RECORDING
    experts = [layer for layer in layers if isinstance(layer, ExpertFFNLayer)]
    assert len(experts) == moe_blocks * n_experts and len(layers) == len(experts) + dense
    assert [layer.index for layer in layers] == list(range(len(layers)))
    assert all(layer.width == width and layer.gated for layer in experts)
    with torch.no_grad():
        baseline = model(ids).logits

    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = [layer.attach(lambda layer, h, s: seen.__setitem__(layer.index, (h.clone(), s.clone())))
               for layer in layers]
    routes, probes = _routing_probe(model)
    with torch.no_grad():
        hooked = model(ids).logits
    for handle in handles + probes:
        handle.remove()
    assert torch.equal(hooked, baseline), "a callback returning None must leave the logits bitwise unchanged"
    assert no_hooks_left(model) and not moe_module._CALLBACKS

    for layer in layers:
        if not isinstance(layer, ExpertFFNLayer):  # shared expert / dense block: every token
            h = seen[layer.index][0]
            assert h.shape[-1] == layer.width and h.numel() == ids.numel() * layer.width
    top_k = model.config.num_experts_per_tok
    assert len(routes) == moe_blocks
    for block_index, (x, top_k_index) in routes.items():
        block_experts = [layer for layer in experts if layer.block == block_index]
        assert sum(seen[layer.index][0].shape[0] for layer in block_experts if layer.index in seen) \
            == ids.numel() * top_k
        for layer in block_experts:
            _check_expert(model.model.layers[block_index].mlp.experts, layer, x, top_k_index, seen.get(layer.index))


def _check_expert(fused, layer, x, top_k_index, record):
    """h and s of expert e are the gated FFN of exactly the routed tokens, in the loop's order."""
    _, token_idx = torch.where(top_k_index.T == layer.expert)
    if record is None:
        assert token_idx.numel() == 0
        return
    h, s = record
    gate, up = torch.nn.functional.linear(x[token_idx], fused.gate_up_proj[layer.expert]).chunk(2, dim=-1)
    torch.testing.assert_close(s, fused.act_fn(gate))
    torch.testing.assert_close(h, fused.act_fn(gate) * up)
    assert layer.down_weight().shape == (x.shape[-1], layer.width)


def test_recording_matches_eager_and_returned_h_is_used():
    """Zeroing expert e's h equals zeroing its down projection; the recording path equals transformers' eager."""
    model = _model("mixtral")
    ids = token_ids()
    model.set_experts_implementation("eager")
    with torch.no_grad():
        eager = model(ids).logits
    layers = find_ffn_layers(model)
    with torch.no_grad():
        recording = model(ids).logits
    assert torch.equal(recording, eager)

    target = layers[1]  # block 0, expert 1
    handle = target.attach(lambda _l, h, _s: h * 0)
    with torch.no_grad():
        zeroed = model(ids).logits
    handle.remove()
    assert not torch.allclose(zeroed, recording, atol=1e-5)
    with torch.no_grad():
        model.model.layers[0].mlp.experts.down_proj[target.expert].zero_()
        torch.testing.assert_close(zeroed, model(ids).logits, rtol=1e-5, atol=1e-6)


def test_attach_restores_recording_after_switch():
    """If the user switches implementation after discovery, attaching switches back (hooks must fire)."""
    model = _model("olmoe")
    layers = find_ffn_layers(model)
    model.set_experts_implementation("eager")
    count = [0]
    handle = layers[0].attach(lambda _l, h, _s: count.__setitem__(0, count[0] + h.shape[0]))
    with torch.no_grad():
        model(token_ids())
    handle.remove()
    assert model.config._experts_implementation == moe_module.RECORDING and count[0] > 0


# The lowest crossing needs passes on both sides of the target for an interval: at 5e-3 its second pass
# already ends the search with nothing bracketing the target (``TargetMeasurement.crossing_interval``).
@pytest.mark.parametrize(("solution", "tolerance"), [("trend", 5e-3), ("lowest-crossing", 1e-3)])
def test_pplp_answer_has_its_interval_though_routed_experts_count_no_position(solution, tolerance):
    """Routed experts see flattened tokens, so a pass counts them by no position (``ActivityCounter.unplaced``),
    and Qwen2-MoE's shared experts too; the PPL-p% answer still gets its interval of the crossing CETT, and no
    interval of the activation ratio (blocks of tokens cannot resample counts that have no position): it says so
    in a warning and in the table, never a range that misses the units it cannot see. Both definitions of the
    answer get their interval from the engine, so both behave so."""
    config_cls, model_cls, extra, *_ = FAMILIES["qwen2_moe"]
    model = build(config_cls, model_cls, **COMMON, **extra, initializer_range=0.5)  # FFNs that matter
    ids = torch.randint(0, 128, (16, 32), generator=torch.Generator().manual_seed(3))
    config = MeasureConfig(metric="pplp", p=1.0, tolerance=tolerance, batch_size=8, solution=solution)
    with torch.no_grad():
        assert not Measurement(model, as_eval_data(ids), config).at("cett", 0.1).activity.by_position
    result = measure(model, ids, config)
    assert result.no_answer is None and result.interval is not None and result.solution.method == solution
    lo, hi = result.interval["cett"]
    assert lo <= result.setting["cett"] <= hi
    assert "activation_ratio" not in result.interval
    assert any("no interval for the kept share" in w for w in result.warnings)
    row = next(line for line in result.table().splitlines() if line.startswith("activation ratio"))
    assert "see the warnings" in row and "activation_ratio.low" not in result.summary()

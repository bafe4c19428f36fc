"""Input sparsity beyond the Llama family: every layout finds its projections, the CETT rule's statistics
see each projection's real input and output, and the sparse path equals the masked dense model on GPT-2
(Conv1D, fused qkv), GPT-NeoX, OPT, Falcon, Phi-3 and Mixtral (attention only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tinymodels import VOCAB, build, no_hooks_left  # noqa: E402

from sparsinglaw.capture.passes import EvalData  # noqa: E402
from sparsinglaw.errors import ModelError  # noqa: E402
from sparsinglaw.inputs import InputConfig, measure_inputs  # noqa: E402
from sparsinglaw.models.projections import find_projections, observe_outputs, projection_layout  # noqa: E402
from sparsinglaw.sparse import SparsePolicy  # noqa: E402
from sparsinglaw.sparse.input_sparse import sparsify_inputs  # noqa: E402
from sparsinglaw.thresholds import InputThresholds  # noqa: E402

LLAMA_LIKE = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64)
# family: (config class, model class, config fields, layout, kinds per block, block 0's first projection)
FAMILIES = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_embd=32, n_layer=2, n_head=4, n_positions=64), "gpt2",
             ["qkv", "o", "up", "down"], lambda m: m.transformer.h[0].attn.c_attn),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM",
                 dict(hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                      max_position_embeddings=64), "gpt_neox", ["qkv", "o", "up", "down"],
                 lambda m: m.gpt_neox.layers[0].attention.query_key_value),
    "opt": ("OPTConfig", "OPTForCausalLM",
            dict(hidden_size=32, ffn_dim=72, num_hidden_layers=2, num_attention_heads=4, word_embed_proj_dim=32,
                 max_position_embeddings=64, pad_token_id=1), "opt", ["q", "k", "v", "o", "up", "down"],
            lambda m: m.model.decoder.layers[0].self_attn.q_proj),
    "falcon": ("FalconConfig", "FalconForCausalLM",
               dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_hidden_size=88, bias=True),
               "falcon", ["qkv", "o", "up", "down"], lambda m: m.transformer.h[0].self_attention.query_key_value),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(LLAMA_LIKE, pad_token_id=0), "phi3",
             ["qkv", "o", "gate_up", "down"], lambda m: m.model.layers[0].self_attn.qkv_proj),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", dict(LLAMA_LIKE, num_local_experts=4), "moe-attention",
                ["q", "k", "v", "o"], lambda m: m.model.layers[0].self_attn.q_proj),
}


def family_model(family: str, seed: int = 0):
    config_cls, model_cls, fields, *_ = FAMILIES[family]
    return build(config_cls, model_cls, seed=seed, **fields)


def eval_data(n: int = 8, length: int = 16) -> EvalData:
    ids = torch.randint(0, VOCAB, (n, length), generator=torch.Generator().manual_seed(5))
    return EvalData(input_ids=ids, source="random")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_layout_finds_every_projection_and_its_true_weight(family):
    _, _, _, layout, kinds, first = FAMILIES[family]
    model = family_model(family)
    assert projection_layout(model).name == layout
    found = find_projections(model)
    assert [p.kind for p in found] == kinds * 2 and [p.block for p in found] == [0] * len(kinds) + [1] * len(kinds)
    assert found[0].module is first(model)
    assert dict(model.named_modules())[found[0].name] is found[0].module
    seen = {}
    with torch.no_grad(), observe_outputs(found, lambda p, x, y: seen.setdefault(p.index, (x, y))):
        model(input_ids=eval_data(2).input_ids, use_cache=False)
    assert no_hooks_left(model) and len(seen) == len(found)
    for p in found:  # down_weight() is W as (out, in) for Linear and Conv1D alike: y - b = x W^T
        x, y = seen[p.index]
        assert x.shape[-1] == p.in_features and y.shape[-1] == p.out_features
        assert torch.allclose(x @ p.down_weight().t(), y, atol=1e-5), p.name


def test_kinds_asked_for_by_name_must_exist():
    model = family_model("gpt2")
    assert [p.kind for p in find_projections(model, ("qkv", "down"))] == ["qkv", "down"] * 2
    with pytest.raises(ModelError, match="no gate"):
        find_projections(model, ("gate", "up"))
    with pytest.raises(ModelError, match="register a ProjectionLayout"):
        find_projections(Toy())


class Toy(torch.nn.Module):
    """Blocks that no layout describes."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(4, 4))])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_measured_thresholds_decode_on_the_sparse_path_like_the_masked_model(family):
    torch.set_num_threads(1)
    model, data = family_model(family, seed=2), eval_data()
    result = measure_inputs(model, data, InputConfig(p=None, cett=0.15, methods=("cett",)))
    method = result.methods[0]
    assert 0.3 < method.kept_share < 0.98  # the rule drops something on every family, not everything
    thresholds = InputThresholds.from_method(result, method)
    originals = [p.module for p in find_projections(model)]
    names = [p.name for p in find_projections(model)]
    assert [row["name"] for row in thresholds.projections] == names
    prompt = data.input_ids[:1, :6]
    handle = sparsify_inputs(model, thresholds, policy=SparsePolicy(max_share=1.0))
    try:
        with torch.no_grad():
            out = model(input_ids=prompt, use_cache=True)
            step = model(input_ids=prompt[:, -1:], past_key_values=out.past_key_values, use_cache=True).logits
            assert all(m.counters.sparse_calls >= 1 for m in handle.modules.values())
            for module in handle.modules.values():  # the same step on the masked dense reference
                module.max_tokens, module.max_union = 1, -1
            out = model(input_ids=prompt, use_cache=True)
            reference = model(input_ids=prompt[:, -1:], past_key_values=out.past_key_values, use_cache=True).logits
        assert torch.allclose(step, reference, atol=1e-4)
        assert 0 < handle.kept_share() < 1
    finally:
        handle.restore()
    assert [p.module for p in find_projections(model)] == originals  # the original modules are back


@pytest.mark.parametrize("family", ["gpt2", "falcon"])
def test_cett_rule_gives_the_target_error_on_transposed_and_biased_projections(family):
    from sparsinglaw.inputs import InputMeasurement

    model, data = family_model(family, seed=3), eval_data()
    m = InputMeasurement(model, data, InputConfig(p=None, methods=("cett",)))
    with torch.no_grad():
        m.dense()
        setting = m.setting("cett", 0.2)
        seen = {p.index: [] for p in m.projections}
        with observe_outputs(m.projections, lambda p, x, y: seen[p.index].append((x, y))):
            model(input_ids=data.input_ids, use_cache=False)
    for p in m.projections:
        x = torch.cat([a.reshape(-1, p.in_features) for a, _ in seen[p.index]])
        y = torch.cat([b.reshape(-1, p.out_features) for _, b in seen[p.index]])
        dropped = x * (x.abs() * p.down_column_norms() < setting.thresholds[p.index])
        error = (dropped @ p.down_weight().detach().t()).norm(dim=-1) / y.norm(dim=-1)
        assert float(error.mean()) == pytest.approx(0.2, rel=0.15), p.name


def test_gpt2_input_thresholds_apply_and_export_through_its_conv1d_layout(tmp_path):
    import json
    import os
    import subprocess

    from test_input_thresholds import LOADER

    from sparsinglaw.export import CONFIG_KEY, export_sparse
    from sparsinglaw.thresholds import apply_thresholds

    torch.set_num_threads(1)
    model, data = family_model("gpt2", seed=4), eval_data()
    result = measure_inputs(model, data, InputConfig(p=None, cett=0.2, methods=("cett",)))
    thresholds = InputThresholds.from_method(result, result.methods[0])
    ids = data.input_ids[:2]
    with torch.no_grad(), apply_thresholds(model, thresholds):
        applied = model(input_ids=ids).logits
    with torch.no_grad():
        assert not torch.allclose(applied, model(input_ids=ids).logits, atol=1e-3)
    out = export_sparse(model, None, thresholds, tmp_path / "exported")
    spec = json.loads((out / "config.json").read_text())[CONFIG_KEY]
    assert {m["weight_layout"] for m in spec["modules"]} == {"in_out"} and len(spec["modules"]) == 8
    torch.save(ids, tmp_path / "ids.pt")
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "hf_modules"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", LOADER, str(out), str(tmp_path / "ids.pt"), str(tmp_path / "l.pt")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.allclose(torch.load(tmp_path / "l.pt"), applied, atol=1e-5, rtol=1e-5)


def test_table_columns_are_the_kinds_the_model_has():
    result = measure_inputs(family_model("phi3"), eval_data(), InputConfig(p=None, methods=("cett",)))
    header = result.table().splitlines()[3].split()
    assert header[-4:] == ["qkv", "o", "gate_up", "down"] and "q" not in header

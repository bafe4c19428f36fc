"""Sparse FFN path: equal to the masked dense computation, swap in/out, generation, fallback."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from helpers import tiny_llama
from sparsinglaw.models.adapters import decoder_blocks
from sparsinglaw.sparse import (
    SparseGatedFFN,
    SparseNonGatedFFN,
    SparsePolicy,
    native,
    restore,
    sparsify,
)
from sparsinglaw.thresholds import apply_thresholds

ALWAYS_SPARSE = SparsePolicy(max_tokens=10_000, max_share=1.0)
PATHS = {"native": ALWAYS_SPARSE, "native-fp32-gate": replace(ALWAYS_SPARSE, half_screen=False),
         "torch": replace(ALWAYS_SPARSE, native=False)}


@pytest.fixture(params=list(PATHS))
def policy(request):
    """Both sparse paths: the compiled kernel (gcc is on every machine of this project) and plain PyTorch."""
    if request.param.startswith("native"):
        assert native.kernels() is not None, "the sparse FFN kernel did not build (is a C compiler installed?)"
    return PATHS[request.param]


def gated_reference(mlp, x, t):
    h = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
    w = mlp.down_proj.weight.norm(dim=0)
    return mlp.down_proj(h * (h.abs() * w >= t))


def quantile_threshold(h, w, q):
    return float(torch.quantile((h.abs() * w).flatten(), q))


def tiny_neox(act="relu"):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    config = GPTNeoXConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=96, hidden_act=act, max_position_embeddings=64)
    return GPTNeoXForCausalLM(config).eval()


@pytest.mark.parametrize("act", ["relu", "silu"])
@pytest.mark.parametrize("tokens", [1, 5])
@pytest.mark.parametrize("q", [0.0, 0.6, 0.9])
def test_gated_equals_masked_dense(act, tokens, q, policy):
    model = tiny_llama(act, seed=1)
    mlp = decoder_blocks(model)[0].mlp
    x = torch.randn(1, tokens, 64)
    with torch.no_grad():
        h = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
        t = quantile_threshold(h, mlp.down_proj.weight.norm(dim=0), q) if q else 0.0
        expected = gated_reference(mlp, x, t)
        sparse = SparseGatedFFN(mlp, {"gate": "gate_proj", "up": "up_proj", "down": "down_proj", "act": "act_fn"},
                                t, policy)
        got = sparse(x)
    assert sparse.counters.sparse_calls == 1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    if act == "relu" or (q > 0 and tokens == 1):  # something was skipped (the bound is loose for SiLU)
        assert sparse.counters.computed < tokens * mlp.down_proj.in_features


def test_gated_with_biases_equals_masked_dense(policy):
    model = tiny_llama("relu", seed=2)
    mlp = decoder_blocks(model)[0].mlp
    with torch.no_grad():
        for lin in (mlp.gate_proj, mlp.up_proj, mlp.down_proj):
            lin.bias = torch.nn.Parameter(torch.randn(lin.out_features) * 0.1)
        x = torch.randn(3, 64)
        h = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
        t = quantile_threshold(h, mlp.down_proj.weight.norm(dim=0), 0.8)
        sparse = SparseGatedFFN(mlp, {"gate": "gate_proj", "up": "up_proj", "down": "down_proj", "act": "act_fn"},
                                t, policy)
        torch.testing.assert_close(sparse(x), gated_reference(mlp, x, t), rtol=1e-5, atol=1e-6)
    assert sparse.counters.sparse_calls == 1


@pytest.mark.parametrize("tokens", [1, 4])
@pytest.mark.parametrize("q", [0.0, 0.7])
def test_nongated_equals_masked_dense(tokens, q, policy):
    model = tiny_neox()
    mlp = model.gpt_neox.layers[0].mlp
    x = torch.randn(1, tokens, 32)
    with torch.no_grad():
        h = mlp.act(mlp.dense_h_to_4h(x))
        w = mlp.dense_4h_to_h.weight.norm(dim=0)
        t = quantile_threshold(h, w, q) if q else 0.0
        expected = mlp.dense_4h_to_h(h * (h.abs() * w >= t))
        sparse = SparseNonGatedFFN(mlp, {"up": "dense_h_to_4h", "down": "dense_4h_to_h", "act": "act"}, t,
                                   policy)
        torch.testing.assert_close(sparse(x), expected, rtol=1e-5, atol=1e-6)
    assert sparse.counters.sparse_calls == 1 and sparse.counters.computed < tokens * 96


def test_swap_in_and_out_restores_model_bitwise():
    model = tiny_llama("relu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mlps = [b.mlp for b in decoder_blocks(model)]
    ids = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        dense = model(input_ids=ids).logits
        handle = sparsify(model, [0.01, 0.02])
        assert [type(b.mlp) for b in decoder_blocks(model)] == [SparseGatedFFN] * 2
        assert set(model.state_dict()) == set(before)  # same keys while swapped
        model(input_ids=ids)
        assert restore(model) == 2
        after = model(input_ids=ids).logits
    assert [b.mlp for b in decoder_blocks(model)] == mlps
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(dense, after) and handle.activation_ratio() < 1.0


@pytest.mark.parametrize("act", ["relu", "silu"])
def test_generation_matches_thresholded_dense(act):
    model = tiny_llama(act, seed=3, layers=2)
    ids = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(0))
    thresholds = [0.004, 0.006]
    kwargs = dict(max_new_tokens=12, do_sample=False, pad_token_id=0)
    with torch.no_grad(), apply_thresholds(model, thresholds):
        expected = model.generate(ids, **kwargs)
    with torch.no_grad(), sparsify(model, thresholds, policy=SparsePolicy(max_tokens=1, max_share=1.0)) as handle:
        got = model.generate(ids, **kwargs)
    assert torch.equal(got, expected)
    assert handle.sparse_share() > 0.5  # decode steps ran the sparse path, the prefill fell back
    print(handle.activation_ratio())
    assert 0.0 < handle.activation_ratio() < 1.0


def test_zeros_only_relu_equals_dense_model():
    model = tiny_llama("relu")
    ids = torch.randint(0, 256, (1, 6))
    with torch.no_grad():
        dense = model(input_ids=ids).logits
        with sparsify(model, zeros_only=True, policy=ALWAYS_SPARSE) as handle:
            sparse = model(input_ids=ids).logits
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-6)
    assert handle.sparse_share() == 1.0 and 0.2 < handle.activation_ratio() < handle.computed_ratio() < 1.0


def test_fallback_to_dense_on_many_tokens_or_low_sparsity():
    model = tiny_llama("silu")
    ids = torch.randint(0, 256, (1, 6))
    with torch.no_grad():
        dense = model(input_ids=ids).logits
        with sparsify(model, zeros_only=True, policy=SparsePolicy(max_tokens=4)) as handle:
            out = model(input_ids=ids).logits  # 6 tokens > max_tokens
        assert handle.sparse_share() == 0.0
        with sparsify(model, zeros_only=True, policy=SparsePolicy(max_tokens=8, max_share=0.35)) as handle:
            model(input_ids=ids[:, :1])  # SiLU: every s_i != 0, union is all of d_f
        assert handle.sparse_share() == 0.0 and handle.computed_ratio() == 1.0
    torch.testing.assert_close(out, dense, rtol=1e-5, atol=1e-6)


def test_refuses_wrong_threshold_count_and_double_sparsify():
    from sparsinglaw.errors import ModelError

    model = tiny_llama("relu")
    with pytest.raises(ModelError):
        sparsify(model, [0.1])
    with sparsify(model, zeros_only=True):
        with pytest.raises(ModelError):
            sparsify(model)
    assert not any(isinstance(b.mlp, SparseGatedFFN) for b in decoder_blocks(model))


def test_autograd_forward_still_works():
    model = tiny_llama("relu")
    with sparsify(model, zeros_only=True, policy=ALWAYS_SPARSE) as handle:
        loss = model(input_ids=torch.randint(0, 256, (1, 4))).logits.sum()
    loss.backward()
    assert handle.sparse_share() == 0.0 and model.model.layers[0].mlp.up_proj.weight.grad is not None


def test_no_neuron_kept_gives_zero_ffn_output():
    model = tiny_llama("relu")
    mlp = decoder_blocks(model)[0].mlp
    sparse = SparseGatedFFN(mlp, {"gate": "gate_proj", "up": "up_proj", "down": "down_proj", "act": "act_fn"},
                            1e9, ALWAYS_SPARSE)
    with torch.no_grad():
        y = sparse(torch.randn(2, 64))
    assert torch.equal(y, torch.zeros(2, 64)) and sparse.counters.computed == 0 and sparse.counters.sparse_calls == 1


def test_native_kernel_is_used_and_can_be_disabled(monkeypatch, tmp_path):
    """ReLU gates go through the fused kernel, other gates through the one given s; native=False through neither."""
    calls = []
    for name in ("gated", "gated_relu"):
        real = getattr(native, name)
        monkeypatch.setattr(native, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    parts = {"gate": "gate_proj", "up": "up_proj", "down": "down_proj", "act": "act_fn"}
    with torch.no_grad():
        x = torch.randn(2, 64)
        for act in ("relu", "silu"):
            mlp = decoder_blocks(tiny_llama(act))[0].mlp
            SparseGatedFFN(mlp, parts, 0.05, ALWAYS_SPARSE)(x)
            SparseGatedFFN(mlp, parts, 0.05, PATHS["torch"])(x)
    assert calls == ["gated_relu", "gated"]
    # SPARSINGLAW_NATIVE=0 (or no compiler) leaves the PyTorch path; a fresh cache builds the library again.
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("SPARSINGLAW_NATIVE", "0")
    assert native.kernels() is None
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("SPARSINGLAW_NATIVE", "1")
    monkeypatch.setenv("SPARSINGLAW_CACHE", str(tmp_path))
    assert native.kernels() is not None and len(list((tmp_path / "kernels").glob("*.so"))) == 1


def test_half_precision_screen_keeps_every_firing_neuron():
    """Gate pre-activations of +-1e-5, far inside float16's rounding error: the screen cannot tell their signs,
    so it must let all through and the float32 gate decide; the kept (token, neuron) pairs equal the dense
    count exactly."""
    model = tiny_llama("relu", seed=4)
    mlp = decoder_blocks(model)[0].mlp
    parts = {"gate": "gate_proj", "up": "up_proj", "down": "down_proj", "act": "act_fn"}
    x = torch.randn(1, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        g = mlp.gate_proj(x)[0]
        sign = torch.where(torch.rand(g.shape, generator=torch.Generator().manual_seed(2)) < 0.5, -1.0, 1.0)
        mlp.gate_proj.bias = torch.nn.Parameter(-g + sign * (1e-5 + 1e-5 * torch.rand(g.shape)))
        h = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
        sparse = SparseGatedFFN(mlp, parts, 0.0, ALWAYS_SPARSE)
        assert sparse._screen is not None
        got = sparse(x)
    torch.testing.assert_close(got, mlp.down_proj(h), rtol=1e-5, atol=1e-6)
    assert sparse.counters.kept_pairs == int(torch.count_nonzero(h)) > 0


def test_fused_kernel_falls_back_after_a_dense_call_and_returns():
    """A ReLU FFN firing on most neurons runs dense from its next call on; once sparse again, that call (gate
    by PyTorch, which measures the union) takes the unfused kernel and the next the fused one. With every neuron
    firing on a bias of 10 the outputs reach ~20, so the float32 sums (in another order than PyTorch's) are
    compared at that scale: over 200 draws of x the worst difference was 7.3e-7 of the largest output, while a
    fixed atol of 1e-6 failed about 1 draw in 10."""
    model = tiny_llama("relu", seed=5)
    mlp = decoder_blocks(model)[0].mlp
    parts = {"gate": "gate_proj", "up": "up_proj", "down": "down_proj", "act": "act_fn"}
    sparse = SparseGatedFFN(mlp, parts, 0.0, SparsePolicy(max_tokens=8, fused_max_share=0.5))
    x = torch.randn(1, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        mlp.gate_proj.bias = torch.nn.Parameter(torch.full((mlp.gate_proj.out_features,), 10.0))  # all fire
        for _ in range(2):
            want = mlp(x)
            torch.testing.assert_close(sparse(x), want, rtol=1e-5, atol=1e-6 * max(1.0, want.abs().max().item()))
        assert (sparse.counters.sparse_calls, sparse.counters.dense_calls) == (1, 1)
        mlp.gate_proj.bias.fill_(-10.0)  # none fire
        for _ in range(2):
            want = mlp(x)
            torch.testing.assert_close(sparse(x), want, rtol=1e-5, atol=1e-6 * max(1.0, want.abs().max().item()))
    assert (sparse.counters.sparse_calls, sparse.counters.dense_calls) == (3, 1) and sparse._recent_union == 0.0

"""The CPU path for input-sparse projections: outputs equal the masked dense computation, kernel and torch."""

from __future__ import annotations

import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.inputs import InputConfig, measure_inputs
from sparsinglaw.sparse import SparsePolicy
from sparsinglaw.sparse import native as kernels
from sparsinglaw.sparse.input_sparse import InputSparseLinear, sparsify_inputs


def linear(d_in=96, d_out=80, bias=False, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(d_in, d_out, bias=bias)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("tokens", [1, 3, 4])
def test_sparse_output_equals_masked_dense(native, weighted, tokens):
    if native and kernels.projection_kernels() is None:
        pytest.skip("no C compiler")
    lin = linear(bias=tokens == 3)
    norms = lin.weight.detach().norm(dim=0) if weighted else None
    x = torch.randn(tokens, lin.in_features)
    threshold = float((x.abs() * (norms if weighted else 1)).flatten().quantile(0.85))
    module = InputSparseLinear(lin, threshold, norms, policy=SparsePolicy(max_share=1.0, native=native))
    with torch.no_grad():
        got, want = module(x), module.masked_dense(x)
    assert module.counters.sparse_calls == 1 and module.counters.dense_calls == 0
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(want, lin(x), atol=1e-3)  # the mask really drops something
    kept = module.keep(x).any(dim=0).sum()
    assert module.counters.kept_inputs == int(kept) < lin.in_features


@pytest.mark.parametrize("native", [True, False])
def test_falls_back_to_dense_above_max_share_and_for_many_tokens(native):
    if native and kernels.projection_kernels() is None:
        pytest.skip("no C compiler")
    lin = linear()
    # threshold 0 keeps everything
    module = InputSparseLinear(lin, 0.0, None, policy=SparsePolicy(max_share=0.5, native=native))
    x = torch.randn(1, 2, lin.in_features)
    with torch.no_grad():
        assert torch.allclose(module(x), lin(x), atol=1e-6)
    assert module.counters.dense_calls == 1 and module.counters.sparse_calls == 0
    module = InputSparseLinear(lin, 0.5, None, policy=SparsePolicy(max_share=1.0, native=native))
    with torch.no_grad():
        y = module(torch.randn(2, 3, lin.in_features))  # 6 tokens: prefill
    assert y.shape == (2, 3, lin.out_features) and module.counters.dense_calls == 1


def test_sparsified_model_decodes_like_the_masked_model():
    torch.set_num_threads(1)
    model, data = tiny_llama(seed=3), random_eval_data(n_sequences=4)
    result = measure_inputs(model, data, InputConfig(p=None, cett=0.1, methods=("cett", "teal-uniform")))
    prompt = data.input_ids[:1, :8]
    for method in result.methods:
        handle = sparsify_inputs(model, method, policy=SparsePolicy(max_share=1.0))
        with torch.no_grad():
            out = model(input_ids=prompt, use_cache=True)  # prefill: masked dense
            step = model(input_ids=prompt[:, :1], past_key_values=out.past_key_values, use_cache=True).logits
            assert all(m.counters.sparse_calls == 1 for m in handle.modules.values())  # the decode step
            for module in handle.modules.values():  # the same step through the reference path
                module.max_tokens = 1
                module.max_union = -1
            out = model(input_ids=prompt, use_cache=True)
            reference = model(input_ids=prompt[:, :1], past_key_values=out.past_key_values, use_cache=True).logits
        assert torch.allclose(step, reference, atol=1e-4)
        handle.restore()
        handle.restore()  # twice: harmless
        assert 0 < handle.kept_share() < 1  # the counters outlive the swap
    assert isinstance(model.model.layers[0].self_attn.q_proj, torch.nn.Linear)


def test_without_the_kernel_the_torch_path_gives_the_same_output(monkeypatch):
    lin = linear(seed=4)
    x = torch.randn(2, lin.in_features)
    threshold = float(x.abs().flatten().quantile(0.7))
    monkeypatch.setitem(kernels._state, "projections", None)  # as with SPARSINGLAW_NATIVE=0 or no compiler
    module = InputSparseLinear(lin, threshold, None, policy=SparsePolicy(max_share=1.0))
    assert module._lib is None
    with torch.no_grad():
        assert torch.allclose(module(x), module.masked_dense(x), atol=1e-5)
    assert module.counters.sparse_calls == 1

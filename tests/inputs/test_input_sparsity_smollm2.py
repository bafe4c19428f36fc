"""Input sparsity on the real SmolLM2-135M (slow: a dense statistics pass and two sparse passes; the PPL-1%
search on it runs in benchmarks/bench_input_sparsity.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsinglaw.data import build_eval_data, builtin_documents
from sparsinglaw.inputs import InputConfig, measure_inputs
from sparsinglaw.sparse import SparsePolicy
from sparsinglaw.sparse.input_sparse import sparsify_inputs


@pytest.mark.slow
def test_smollm2_input_sparsity_and_sparse_decode(smollm2):
    model, tokenizer = smollm2
    data = build_eval_data(tokenizer, builtin_documents(), seq_len=64, max_tokens=512)
    config = InputConfig(p=None, cett=0.05, sparsity=0.3, methods=("cett", "teal-uniform"), batch_size=8)
    result = measure_inputs(model, data, config, model_name="SmolLM2-135M-Instruct")
    print(result.table())
    assert len(result.methods[0].projections) == 30 * 7
    for m in result.methods:
        assert m.bytes_ratio < 0.95 and 0 < m.kept_share < 0.95
        assert 0.9 < m.ppl_ratio < 1.1
    assert result.method("teal-uniform").kept_share == pytest.approx(0.7, abs=0.05)
    cett = result.method("cett")
    kept = np.array([p.kept_share for p in cett.projections])
    assert np.ptp(kept) > 0.1  # per-projection thresholds spread the kept share
    prompt = data.input_ids[:1, :16]
    with torch.no_grad():
        dense = model(input_ids=prompt).logits[:, -1]
        handle = sparsify_inputs(model, cett, policy=SparsePolicy(max_share=1.0))
        try:
            out = model(input_ids=prompt[:, :-1], use_cache=True)
            step = model(input_ids=prompt[:, -1:], past_key_values=out.past_key_values, use_cache=True).logits[:, -1]
        finally:
            handle.restore()
    assert handle.kept_share() < 0.95
    # One sparse step after a (masked) prefill stays close to the dense model's prediction.
    assert int(step.argmax()) == int(dense.argmax()) or torch.softmax(step, -1).max() < 0.5

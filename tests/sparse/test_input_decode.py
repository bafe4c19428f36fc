"""The input-sparse projections end to end in decode: input and combined thresholds files, all seven
projections per block on the sparse path at batch 1-4, outputs equal to the masked dense computation
(``apply_thresholds``' hooks), dense fallback, and ``sparsinglaw speed`` with those files."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import random_eval_data, text_tokenizer, tiny_llama
from sparsinglaw.cli import main
from sparsinglaw.inputs import InputConfig, measure_inputs
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.sparse import SparsePolicy
from sparsinglaw.sparse.input_sparse import sparsify_inputs
from sparsinglaw.sparse.speed import compare_speed
from sparsinglaw.thresholds import CombinedThresholds, InputThresholds, Thresholds, apply_thresholds

RUN = ["--new-tokens", "4", "--repeats", "1", "--prompt-len", "8", "--batch-sizes", "1,4", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny():
    """(model, data, input thresholds per method, output thresholds) of a tiny random SiLU Llama."""
    torch.set_num_threads(1)
    vocab = len(text_tokenizer())  # so that the saved model (model_dir) gets a matching tokenizer
    model, data = tiny_llama(seed=5, vocab=vocab), random_eval_data(n_sequences=4, vocab=vocab)
    result = measure_inputs(model, data, InputConfig(p=None, cett=0.15, sparsity=0.5,
                                                     methods=("cett", "teal-uniform")))
    inputs = {m.method: InputThresholds.from_method(result, m) for m in result.methods}
    output = Thresholds.from_result(measure(model, data, MeasureConfig(metric="cett", cett=0.2, level=0.0)),
                                    "llama")
    return model, data, inputs, output


def decode_step(model, prompt):
    """Logits of one decode step (batch of prompt rows) after a prefill."""
    with torch.no_grad():
        out = model(input_ids=prompt, use_cache=True)
        return model(input_ids=prompt[:, -1:], past_key_values=out.past_key_values, use_cache=True).logits


@pytest.mark.parametrize("method", ["cett", "teal-uniform"])
@pytest.mark.parametrize("combined", [False, True])
@pytest.mark.parametrize("batch", [1, 4])
def test_decode_step_equals_the_masked_model(tiny, method, combined, batch):
    model, data, inputs, output = tiny
    thresholds = CombinedThresholds(output, inputs[method]) if combined else inputs[method]
    prompt = data.input_ids[:batch, :8]
    with apply_thresholds(model, thresholds):
        want = decode_step(model, prompt)
    dense = decode_step(model, prompt)
    handle = sparsify_inputs(model, thresholds, policy=SparsePolicy(max_share=1.0))
    try:
        handle.reset_counters()
        got = decode_step(model, prompt)
    finally:
        handle.restore()
    assert len(handle.modules) == 14  # all seven projections of both blocks
    # every module ran one prefill call (dense fallback) and one decode call on the sparse path
    assert all(m.counters.sparse_calls == 1 and m.counters.dense_calls == 1 for m in handle.modules.values())
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, dense, atol=1e-3)  # the thresholds change the step
    assert 0 < handle.kept_share() < 1 and handle.weight_bytes_read() < 2 * handle.dense_weight_bytes()
    assert isinstance(model.model.layers[0].mlp.down_proj, torch.nn.Linear)


def test_combined_down_projection_reads_only_what_both_rules_keep(tiny):
    model, data, inputs, output = tiny
    prompt = data.input_ids[:1, :8]
    shares = {}
    for name, thresholds in (("input", inputs["teal-uniform"]), ("combined", CombinedThresholds(output, inputs["teal-uniform"]))):
        handle = sparsify_inputs(model, thresholds, policy=SparsePolicy(max_share=1.0))
        try:
            decode_step(model, prompt)
            handle.reset_counters()
            decode_step(model, prompt)
        finally:
            handle.restore()
        downs = [m for n, m in handle.modules.items() if n.endswith("down_proj")]
        shares[name] = sum(m.counters.kept_pairs for m in downs) / sum(m.counters.offered_pairs for m in downs)
    assert shares["combined"] < shares["input"]


def test_output_thresholds_are_refused_on_the_input_path(tiny):
    from sparsinglaw.errors import ConfigError

    model, _, _, output = tiny
    with pytest.raises(ConfigError, match="output"):
        sparsify_inputs(model, output)
    assert isinstance(model.model.layers[0].self_attn.q_proj, torch.nn.Linear)


def test_compare_speed_on_input_thresholds_falls_back_for_larger_batches(tiny):
    model, data, inputs, _ = tiny
    report = compare_speed(model, inputs["cett"], prompts=data.input_ids[:4, :6], batch_sizes=(1, 4),
                           new_tokens=3, repeats=1, policy=SparsePolicy(max_share=1.0, max_tokens=2))
    one, four = report.rows
    assert one.sparse_share == 1.0 and four.sparse_share == 0.0 and four.read_share == 1.0
    assert 0 < one.kept_share < 1 and one.read_share < 1 and one.bound > 1
    assert "of bound" in report.table() and report.to_dict()["rows"][0]["bound"] == pytest.approx(one.bound)
    assert isinstance(model.model.layers[1].mlp.up_proj, torch.nn.Linear)


@pytest.fixture(scope="module")
def model_dir(tiny, tmp_path_factory):
    """The tiny model with a real-text tokenizer (same vocabulary size) and its thresholds files."""
    path = tmp_path_factory.mktemp("tiny")
    tokenizer = text_tokenizer()
    model, _, inputs, output = tiny
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    inputs["cett"].save(path / "input.json")
    CombinedThresholds(output, inputs["teal-uniform"]).save(path / "combined.json")
    return path


@pytest.mark.parametrize("kind", ["input", "combined"])
def test_speed_cli_runs_every_projection_sparsely(model_dir, tmp_path, capsys, kind):
    out = tmp_path / "speed.json"
    code = main(["speed", "--model", str(model_dir), "--thresholds", str(model_dir / f"{kind}.json"),
                 "--fallback-ratio", "1", "--output", str(out), *RUN])
    assert code == 0 and "sparse proj ms" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert [r["batch"] for r in report["rows"]] == [1, 4] and report["policy"]["max_share"] == 1.0
    assert all(r["sparse_share"] == 1.0 and 0 < r["kept_share"] < 1 and r["bytes_ratio"] < 1 for r in report["rows"])
    assert report["mode"].startswith(kind)


def test_speed_cli_refuses_fallback_tokens_above_the_kernel_limit(model_dir, capsys):
    code = main(["speed", "--model", str(model_dir), "--thresholds", str(model_dir / "input.json"),
                 "--fallback-tokens", "9", *RUN])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(errors) == 1 and "(--fallback-tokens) must be in [1, 4]" in errors[0]


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_output_rule_keeps_what_both_rules_keep_and_counts_pairs(native, weighted):
    from sparsinglaw.sparse import native as kernels
    from sparsinglaw.sparse.input_sparse import InputSparseLinear

    if native and kernels.projection_kernels() is None:
        pytest.skip("no C compiler")
    torch.manual_seed(2)
    lin = torch.nn.Linear(120, 40, bias=False)
    x = torch.randn(3, 120)
    norms = lin.weight.detach().norm(dim=0)
    first = float((x.abs() * (norms if weighted else 1)).flatten().quantile(0.5))
    second = float((x.abs() * norms).flatten().quantile(0.6))
    module = InputSparseLinear(lin, first, norms if weighted else None,
                               policy=SparsePolicy(max_share=1.0, native=native), output_rule=(second, norms))
    keep = (x.abs() * (norms if weighted else 1) >= first) & (x.abs() * norms >= second)
    with torch.no_grad():
        got = module(x)
        want = lin(x * keep)
    assert torch.allclose(got, want, atol=1e-5)
    assert module.counters.sparse_calls == 1 and module.counters.kept_pairs == int(keep.sum())
    assert module.counters.kept_inputs == int(keep.any(dim=0).sum()) < 120


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("tokens", [1, 4])
def test_fallback_above_max_share_gives_the_masked_product(native, tokens):
    from sparsinglaw.sparse import native as kernels
    from sparsinglaw.sparse.input_sparse import InputSparseLinear

    if native and kernels.projection_kernels() is None:
        pytest.skip("no C compiler")
    torch.manual_seed(3)
    lin = torch.nn.Linear(100, 30, bias=True)
    x = torch.randn(tokens, 100)
    threshold = float(x.abs().flatten().quantile(0.4))  # keeps about 60% of the inputs, above max_share
    module = InputSparseLinear(lin, threshold, None, policy=SparsePolicy(max_share=0.3, native=native))
    with torch.no_grad():
        got = module(x)
        want = module.masked_dense(x)
    assert module.counters.dense_calls == 1 and module.counters.sparse_calls == 0
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, lin(x), atol=1e-3)
    assert module.counters.kept_pairs == int(module.keep(x).sum()) and module.counters.columns_read == 100

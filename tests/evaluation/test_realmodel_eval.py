"""SmolLM2-135M: PPL-1% thresholds reproduce their PPL ratio, and lm-eval dense vs sparse on a local task."""

from __future__ import annotations

import math

import pytest

from sparsinglaw.capture.passes import run_pass
from sparsinglaw.thresholds import Thresholds, apply_thresholds

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def ppl1(smollm2_ppl1):
    """PPL-1% on 512 tokens of the built-in corpus (8 x 64), and that calibration data (shared fixture)."""
    return smollm2_ppl1


def test_ppl1_thresholds_reproduce_the_ppl_ratio(smollm2, ppl1, tmp_path):
    model, _ = smollm2
    data, result = ppl1
    thresholds = Thresholds.load(Thresholds.from_result(result, "llama").save(tmp_path / "ppl1.json"))
    dense = run_pass(model, data, batch_size=8)
    with apply_thresholds(model, thresholds) as stats:
        sparse = run_pass(model, data, batch_size=8)
    ratio = math.exp(sparse.mean_nll - dense.mean_nll)
    print(f"\nSmolLM2 PPL-1%: result ppl ratio {result.ppl_ratio:.6f}, re-applied {ratio:.6f} "
          f"(error {abs(ratio - result.ppl_ratio):.2e}); activation {result.activation_ratio:.4f} vs {stats.activation_ratio:.4f}")
    # The thresholds are those of the answer CETT, where the trend crosses 1.01: re-applied, the ratio is the
    # trend plus this data's scatter; the activation ratio is the one the result read there (interpolated
    # between passes a few percent of CETT apart when no pass sits at the answer).
    sol = result.solution
    assert abs(ratio - 1.01) <= 4 * sol["noise_sd"] + 2 * sol["standard_error"]
    assert stats.activation_ratio == pytest.approx(result.activation_ratio, abs=2e-3)


def test_smollm2_lm_eval_dense_vs_sparse(smollm2, ppl1, mc_task):
    pytest.importorskip("lm_eval")
    from sparsinglaw.evaluate import evaluate_dense_and_sparse

    model, tokenizer = smollm2
    _, result = ppl1
    include, task = mc_task
    # (dense == plain lm-eval sample by sample is checked on the tiny model; this machine is slow)
    report = evaluate_dense_and_sparse(model, tokenizer, Thresholds.from_result(result), [task],
                                       include_path=str(include), batch_size=8, limit=6, bootstrap_iters=0,
                                       log_samples=True)
    for module in model.modules():
        assert not module._forward_pre_hooks and not module._forward_hooks
    dense_ll = [s["filtered_resps"] for s in report.raw["dense"]["samples"][task]]
    assert dense_ll != [s["filtered_resps"] for s in report.raw["sparse"]["samples"][task]]
    assert 0.3 < report.activation_ratio < 0.95  # the sparse run zeroed a real share of the activations
    print("\nSmolLM2 local task:\n" + report.table())

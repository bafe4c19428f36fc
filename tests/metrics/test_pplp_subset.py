"""PPL-p% on big evaluations (``metrics.pplp_subset``): a search on a subset of the sequences gives the start
of the search on all of them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import fit_briefly, text_tokenizer, tiny_llama
from sparsinglaw.data import build_eval_data, builtin_documents
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.metrics import pplp_subset
from sparsinglaw.metrics.pplp_answer import CONFIRM_WIDTH, trend_ratio
from sparsinglaw.metrics.pplp_subset import sampling_se, start_rows, use_subsets
from sparsinglaw.metrics.pplp_trend import TrendSearch

TOL = 5e-3  # the tiny model's sequences differ far more than real text's: a subset meets 1e-3 only near all


@pytest.fixture(scope="module")
def big():
    """A briefly trained tiny model whose PPL-1% search converges, and 32,768 tokens (256 x 128) of text."""
    torch.manual_seed(0)
    tokenizer = text_tokenizer()
    model = fit_briefly(tiny_llama("silu", vocab=len(tokenizer), init=0.02), tokenizer, steps=150)
    data = build_eval_data(tokenizer, builtin_documents() * 4, seq_len=128, max_tokens=32768)
    return model, data


@pytest.fixture(scope="module")
def answers(big):
    """PPL-1% by the subset search and by the all-tokens search, on the same model and tokens."""
    model, data = big
    return pplp(model, data, subsets=True), pplp(model, data, subsets=False)


def pplp(model, data, subsets: bool):
    saved = pplp_subset.BIG_TOKENS
    pplp_subset.BIG_TOKENS = saved if subsets else 10**15
    try:
        return measure(model, data, MeasureConfig(metric="pplp", p=1.0, tolerance=TOL, batch_size=16))
    finally:
        pplp_subset.BIG_TOKENS = saved


def test_subset_search_answer_matches_the_all_tokens_search_with_fewer_token_passes(big, answers):
    """The subset's answer is only the start: the search on every sequence begins there, takes the subset's
    slope as its prior, and converges with few passes on all of them (its own stop rule and confirmation)."""
    data = big[1]
    assert use_subsets(data.n_sequences, data.seq_len)
    fast, plain = answers
    assert plain.solution.get("subset") is None and plain.solution["converged"]
    sol, subset = fast.solution, fast.solution["subset"]
    assert sol["converged"] and subset["sequences"] < subset["of"] == data.n_sequences
    step = subset["steps"][0]
    on_all = [q for q in fast.search if q["sequences"] == data.n_sequences]
    assert len(on_all) == sol["sparse_passes"] == subset["passes_on_all"] <= 3
    assert on_all[0]["cett"] == pytest.approx(step["cett"])  # the first pass on all sequences is at the start
    # Converged by the rule of small evaluations: a pass within CONFIRM_WIDTH of the answer, on all sequences,
    # reads the target within the tolerance; that pass is what the result reports.
    check = sol["confirmation"]
    assert check["confirmed"] and abs(math.log(check["cett"] / sol["cett"])) <= CONFIRM_WIDTH
    assert any(q["cett"] == pytest.approx(check["cett"]) for q in on_all)
    assert abs(fast.ppl_ratio - 1.01) <= TOL and fast.ppl_ratio == pytest.approx(check["ppl_ratio"])
    # The same answer as the all-tokens search, within the tolerance: its trend read at the subset's answer.
    read = trend_ratio(math.log(1.01), plain.solution["slope"], math.log(plain.solution["cett"]), math.log(sol["cett"]))
    assert abs(read - 1.01) <= TOL
    # Fewer tokens through sparse passes than the all-tokens search's passes (each over every token).
    assert subset["sparse_pass_equivalents"] < plain.solution["sparse_passes"]
    assert fast.interval is not None


def test_the_reported_ratios_are_those_of_an_independent_pass_on_all_tokens(big, answers):
    model, data = big
    fast = answers[0]
    again = measure(model, data, MeasureConfig(metric="cett", cett=fast.solution["cett"], batch_size=16))
    assert fast.ppl_ratio == pytest.approx(again.ppl_ratio, abs=1e-9)
    assert fast.activation_ratio == pytest.approx(again.activation_ratio, abs=1e-9)


def test_sampling_error_formula_matches_the_spread_of_random_subsets():
    """Cochran's standard error of a subset's ratio against the spread of many real random subsets' ratios."""
    rng = np.random.default_rng(3)
    n, seq_len, m = 400, 33, 40
    dense = rng.gamma(2.0, 1.0, size=(n, seq_len))
    sensitivity = rng.lognormal(0.0, 0.8, size=(n, 1))  # sequences differ in how much sparsity costs them
    sparse = dense + 0.01 * sensitivity + rng.normal(0.0, 0.05, size=(n, seq_len))
    full = math.exp((sparse - dense).sum() / (n * (seq_len - 1)))
    draws = []
    for _ in range(2000):
        rows = rng.choice(n, m, replace=False)
        draws.append(math.exp((sparse[rows] - dense[rows]).sum() / (m * (seq_len - 1))) - full)
    estimates = [sampling_se(dense[rows], sparse[rows], n, 1.01) for rows in
                 (rng.choice(n, m, replace=False) for _ in range(50))]
    assert np.median(estimates) == pytest.approx(float(np.std(draws)), rel=0.15)
    assert sampling_se(dense, sparse, n, 1.01) == 0.0  # the subset is everything: no sampling error


def test_the_first_subset_size():
    assert start_rows(64, 256, 1.01, 1e-3) == 16 and start_rows(10, 256, 1.01, 1e-3) == 10
    assert start_rows(1024, 64, 1.01, 1e-3) == 64  # 4,096 tokens


def test_a_search_resumed_from_passes_that_already_converge_makes_no_new_pass():
    """``TrendSearch.run`` goes on from the passes it is given: a converged set needs none more."""
    rng = np.random.default_rng(0)
    tokens = np.full(64, 63.0)
    dense = rng.gamma(2.0, 30.0, size=64)

    def losses(c):  # log r = 0.01 * (c / 0.36)^4 exactly, spread evenly over the blocks
        return dense + tokens * math.log(1.01) * (c / 0.36) ** 4

    first = TrendSearch(dense, tokens, 1.0, 1e-3, 12)
    done = first.run(losses)
    assert done.converged
    resumed = TrendSearch(dense, tokens, 1.0, 1e-3, 12)
    resumed.cetts, resumed.sparse_nll = list(first.cetts), list(first.sparse_nll)
    calls = []
    again = resumed.run(lambda c: calls.append(c) or losses(c))
    assert again.converged and calls == [] and again.fit.cett == pytest.approx(done.fit.cett)

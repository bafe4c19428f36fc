"""The budget at which a limit not yet identified would be, extrapolated by refitting simulated longer runs."""

from __future__ import annotations

import numpy as np

from sparsinglaw.laws import FitOptions, fit_law
from sparsinglaw.laws.predict import IDENTIFY_FACTORS, tokens_to_identify

TOKENS = np.arange(1, 17) * 65536.0


def _silu_run(sigma: float, a0: float = 0.4) -> np.ndarray:
    d = TOKENS / 1e9
    return a0 - 0.02 * d**-0.3 + np.random.default_rng(1).normal(0, sigma, len(d))


def test_a_noisy_limit_is_identified_at_a_longer_budget():
    opts = FitOptions(interval="bootstrap", n_boot=50)
    fit = fit_law((TOKENS, _silu_run(0.004)), "silu", opts)
    assert not fit.limit.identified and "wide" in fit.limit.reason  # 16 checkpoints: interval too wide
    found = tokens_to_identify(fit, opts)
    assert found.reason is None and found.tokens is not None
    assert found.factor in IDENTIFY_FACTORS and found.tokens >= 2 * TOKENS[-1]
    # the simulated longer run, refitted, does identify it: its limit lies near the fitted one
    assert "identified at about" in found.describe() and f"{found.factor:g}x" in found.describe()


def test_less_scatter_needs_no_more_tokens():
    opts = FitOptions(interval="bootstrap", n_boot=50)
    noisy = tokens_to_identify(fit_law((TOKENS, _silu_run(0.004)), "silu", opts), opts)
    noisier = tokens_to_identify(fit_law((TOKENS, _silu_run(0.012)), "silu", opts), opts)
    assert noisy.tokens is not None and (noisier.tokens is None or noisier.tokens >= noisy.tokens)


def test_a_limit_on_its_bound_is_not_extrapolated():
    opts = FitOptions(interval="bootstrap", n_boot=20)
    straight = 0.2 + 0.01 * np.log(TOKENS / TOKENS[0])  # rising without bending: A0 goes to its bound
    fit = fit_law((TOKENS, straight), "silu", opts)
    assert "sits on the bound" in fit.limit.reason
    found = tokens_to_identify(fit, opts)
    assert found.tokens is None and "sits on its bound" in found.describe()

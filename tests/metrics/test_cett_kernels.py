"""The C measurement kernels (metrics/cett_kernels.c) compute what their PyTorch fallbacks compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.measure import MeasureConfig, Measurement
from sparsinglaw.metrics import cett, kernels


@pytest.fixture
def lib():
    assert kernels.kernels() is not None, "the CETT kernels did not build (is a C compiler installed?)"


@pytest.fixture
def no_kernels(monkeypatch):
    """Run the PyTorch fallbacks (as without a compiler)."""
    return lambda: monkeypatch.setattr(kernels, "_state", {"lib": None})


def sample(seed: int = 0, n: int = 96, df: int = 200):
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(n, df, generator=generator) * torch.rand(df, generator=generator)
    h[h.abs() < 0.2] = 0  # exact zeros, as after ReLU
    norms = torch.rand(df, generator=generator) + 0.5
    y_norm = torch.rand(n, generator=generator) + 0.1
    y_norm[5] = 0.0  # a token whose FFN output is zero contributes nothing
    return h, norms, y_norm


class GridOnly(cett.CETTCurves):
    def __init__(self, log_lo: float, log_step: float, points: int, norms: torch.Tensor):
        self.log_lo, self.log_step, self.fine_points, self.norms = [log_lo], [log_step], points, [norms]


@pytest.fixture
def torch_threads():
    """Set PyTorch's (OpenMP) thread count, which the kernels split their rows over; restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 3])
def test_grid_stats_equal_the_pytorch_sums(lib, threads, torch_threads):
    # 3 threads split the 200 rows unevenly; each part keeps its own sums, added up afterwards.
    torch_threads(threads)
    h, norms, y_norm = sample(n=200)
    magnitude = h.abs() * norms
    log_lo, points = float(np.log(magnitude[magnitude > 0].min())) - 1.0, 64
    log_step = (float(np.log(magnitude.max())) + 0.5 - log_lo) / (points - 1)
    proxy, counts, full, top = kernels.grid_stats(h, norms, y_norm, log_lo, log_step, points)
    grid = GridOnly(log_lo, log_step, points, norms)
    expected_proxy, expected_counts = grid._proxy_on_grid(0, magnitude, y_norm)
    torch.testing.assert_close(proxy, expected_proxy, rtol=1e-5, atol=1e-6)
    # The kernel's log is within 2e-6 of libm's: a bin may differ only for a magnitude at a grid point.
    assert float((counts - expected_counts).abs().max()) <= 1
    expected_full = cett._per_token_ratio(magnitude.pow(2).sum(-1, keepdim=True).sqrt(), y_norm).sum()
    assert full == pytest.approx(float(expected_full), rel=1e-5)
    assert top == float(magnitude.max())


def test_masked_copies_and_threshold_apply_equal_the_masks(lib):
    h, norms, _ = sample(1)
    magnitude = h.abs() * norms
    levels = torch.tensor([0.1, 0.3, 0.6])
    out = torch.empty(3, *h.shape)
    assert kernels.masked_copies(h, norms, levels, out)
    assert torch.equal(out, torch.stack([h * (magnitude < t) for t in levels]))
    for t in (0.0, 0.3):
        applied, neuron_kept = h.clone(), torch.zeros(h.shape[1], dtype=torch.float64)
        per_token = kernels.threshold_apply(applied, norms, t, neuron_kept)
        keep = magnitude >= t
        assert torch.equal(applied, h * keep)
        assert torch.equal(per_token, keep.float().sum(dim=1))
        assert torch.equal(neuron_kept, keep.double().sum(dim=0))


@pytest.mark.parametrize(("threads", "outputs"), [(1, 100), (2, 100), (1, 212), (2, 212)])
def test_anchor_dropped_norms_equal_the_masked_matmuls(lib, threads, outputs, torch_threads, monkeypatch):
    # Shapes off every tile size (64 tokens, 64 neurons, 64 outputs; 212 = 128 + 64 + 20 takes the AVX-512
    # kernel's 128-wide chunk, a 64-wide one and a tail), unsorted thresholds, exact zeros; 150 rows on 2
    # threads: blocks of 64, 64 and 22 tokens dealt to the two.
    torch_threads(threads)
    h, norms, _ = sample(3, n=150, df=200)
    weight_t = torch.randn(200, outputs, generator=torch.Generator().manual_seed(4)) / 10
    magnitude = h.abs() * norms
    levels = torch.tensor([0.6, 0.05, 0.3, float(magnitude.max()) * 2])  # the last drops everything
    exact = kernels.anchor_dropped_norms(h, norms, levels, weight_t)
    expected = torch.stack([((h * (magnitude < t)) @ weight_t).norm(dim=-1) for t in levels])
    torch.testing.assert_close(exact, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(exact[3], (h @ weight_t).norm(dim=-1), rtol=1e-5, atol=1e-6)
    # The PyTorch fallback of dropped_norm_ratio gives the same ratios.
    y = (h @ weight_t).norm(dim=-1)
    fast = cett.dropped_norm_ratio(h, weight_t, norms, levels, y_norm=y)
    monkeypatch.setattr(kernels, "_state", {"lib": None})
    torch.testing.assert_close(fast, cett.dropped_norm_ratio(h, weight_t, norms, levels, y_norm=y), rtol=1e-5,
                               atol=1e-6)


def test_kernels_decline_what_they_cannot_take(lib):
    h, norms, y_norm = sample(2)
    assert kernels.grid_stats(h.double(), norms, y_norm, 0.0, 0.1, 16) is None
    assert kernels.threshold_apply(h.t(), norms, 0.1, None) is None  # not contiguous
    assert kernels.anchor_dropped_norms(h, norms, torch.linspace(0.1, 1, 9), torch.ones(h.shape[1], 4)) is None


def run_measurement(model, data):
    measurement = Measurement(model, data, MeasureConfig(metric="pplp", batch_size=3))
    evaluation = measurement.at("cett", 0.1)
    return measurement, evaluation


def test_measurement_is_the_same_with_and_without_kernels(lib, no_kernels):
    model, data = tiny_llama("relu", seed=3), random_eval_data(n_sequences=6, seq_len=24)
    fast, fast_eval = run_measurement(model, data)
    no_kernels()
    slow, slow_eval = run_measurement(model, data)
    for c in (0.02, 0.1, 0.3):
        np.testing.assert_allclose(fast.curves.thresholds(c), slow.curves.thresholds(c), rtol=1e-4)
    assert fast_eval.applied.thresholds == pytest.approx(slow_eval.applied.thresholds, rel=1e-4)
    torch.testing.assert_close(fast_eval.losses.nll, slow_eval.losses.nll, rtol=1e-5, atol=1e-5)
    assert fast_eval.activity.activation_ratio == pytest.approx(slow_eval.activity.activation_ratio, abs=1e-3)


def test_sparse_pass_through_the_kernel_is_exact(lib, no_kernels):
    model, data = tiny_llama("silu", seed=4), random_eval_data(n_sequences=5, seq_len=20)
    measurement, through_kernel = run_measurement(model, data)
    no_kernels()
    through_torch = measurement.evaluate(through_kernel.applied)
    assert torch.equal(through_kernel.losses.nll, through_torch.losses.nll)
    for name in ("active", "slots", "seq_active", "seq_slots"):
        assert torch.equal(getattr(through_kernel.activity, name), getattr(through_torch.activity, name)), name
    for fast, slow in zip(through_kernel.activity.neuron_active, through_torch.activity.neuron_active):
        assert torch.equal(fast, slow)


def test_kernels_share_pytorchs_openmp_runtime(lib):
    """The kernels' threads come from the libgomp PyTorch loaded, not a second runtime whose threads would
    compete with PyTorch's spinning workers for the same cores."""
    maps = Path("/proc/self/maps").read_text()
    runtimes = {line.split()[-1] for line in maps.splitlines() if "libgomp" in line}
    assert len(runtimes) == 1, runtimes

"""Checks at equal tokens (width-depth) and equal tokens per parameter (scale), on hand-made cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparsinglaw.study.collect import CellData
from sparsinglaw.study.config import FitSpec
from sparsinglaw.study.fit import Analysis, widthdepth_groups
from sparsinglaw.study.resolvable import (
    sizes_at_equal_tokens_per_param,
    smaller_converges_faster,
    widthdepth_at_equal_tokens,
)

TOKENS = [262_144 * (i + 1) for i in range(12)]


def _cell(act, d, layers, n_params, ratios, half=0.003, budget=1.9e5):
    cell = CellData(f"{act}-{d}x{layers}", act, Path("."), d, layers, n_params, TOKENS[-1])
    cell.points = list(zip(TOKENS, ratios))
    cell.intervals = {t: (a - half, a + half) for t, a in cell.points}
    cell.budget, cell.target_ratio = budget, d / layers
    return cell


def _widthdepth(finals, half=0.003):
    shapes = [(32, 8), (48, 6), (64, 4), (96, 3)]  # r = 4, 8, 16, 32
    cells = [_cell("relu", d, layers, 1.9e5, np.full(12, a), half) for (d, layers), a in zip(shapes, finals)]
    analysis = Analysis(cells, spec=FitSpec(skip_fraction=0.25))
    analysis.widthdepth = widthdepth_groups(analysis)
    return widthdepth_at_equal_tokens(analysis)


def test_widthdepth_slope_at_equal_tokens_gives_a_verdict_with_its_interval():
    (check,) = _widthdepth([0.05, 0.06, 0.07, 0.08])
    assert check["verdict"] == "agrees" and "slope of A vs r" in check["found"]
    (check,) = _widthdepth([0.08, 0.07, 0.06, 0.05])
    assert check["verdict"] == "disagrees"
    (check,) = _widthdepth([0.05, 0.06, 0.07, 0.08], half=0.2)  # noise far above the trend
    assert check["verdict"] == "inconclusive"


def _sizes(small_ratios, large_ratios, half=0.003):
    small = _cell("silu", 64, 4, 1.9e5, small_ratios, half)
    large = _cell("silu", 96, 6, 6.4e5, large_ratios, half, budget=6.4e5)
    large.target_ratio = small.target_ratio  # the same configured r, two sizes
    return Analysis([small, large], spec=FitSpec(skip_fraction=0.25))


def test_sizes_compared_at_equal_tokens_per_parameter():
    flat = np.full(12, 0.22)
    (check,) = sizes_at_equal_tokens_per_param(_sizes(flat, flat + 0.005))
    assert check["verdict"] == "agrees"
    # the large model's last checkpoint is at 3.1M / 6.4e5 = 4.9 tokens per parameter; the small one's
    # checkpoint nearest 4.9 x 1.9e5 = 0.93M tokens is its fourth (1.05M)
    assert "4.92 tokens per parameter" in check["found"] and "1.05e+06 tokens" in check["found"]
    (check,) = sizes_at_equal_tokens_per_param(_sizes(flat, flat + 0.1))
    assert check["verdict"] == "disagrees"


def test_smaller_model_converging_faster():
    x = np.log(TOKENS)
    small = 0.30 - 0.002 * (x - x[0])  # nearly flat late
    large = 0.30 - 0.03 * (x - x[0])  # still falling
    (check,) = smaller_converges_faster(_sizes(small, large))
    assert check["verdict"] == "agrees"
    (check,) = smaller_converges_faster(_sizes(large, small))
    assert check["verdict"] == "disagrees"

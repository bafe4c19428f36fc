"""Width-depth hinge and loss-optimal range; scale comparison (docs/paper.md section 4)."""

from __future__ import annotations

import numpy as np
import pytest

from sparsinglaw.errors import ConfigError, DataError
from sparsinglaw.laws import fit_law, read_curve
from sparsinglaw.laws.scale import PAPER_SHAPES, compare_limits, non_embedding_params, params_for
from sparsinglaw.laws.widthdepth import fit_hinge, loss_optimal_range, read_widthdepth

# the paper's 0.1B width-depth sweep (hidden x layers)
SWEEP = [(128, 575), (256, 144), (384, 64), (512, 36), (768, 16), (896, 12), (1024, 9), (1152, 7),
         (1280, 6), (1408, 5), (1536, 4), (1792, 3), (2048, 2)]
RATIOS = np.array([h / n for h, n in SWEEP])


def _hinge_data(seed=1, noise=0.002):
    y = 0.08 + 0.0004 * np.minimum(RATIOS - 114, 0) + np.random.default_rng(seed).normal(0, noise, len(RATIOS))
    return RATIOS, y


def test_hinge_recovers_bottleneck_with_interval():
    r, y = _hinge_data()
    fit = fit_hinge(r, y, n_boot=100)
    assert fit.low <= 114 <= fit.high
    assert fit.plateau == pytest.approx(0.08, abs=0.003)
    assert fit.slope == pytest.approx(0.0004, rel=0.2)


def test_hinge_bad_input():
    with pytest.raises(DataError, match="at least 4"):
        fit_hinge([1, 2, 3], [0.1, 0.1, 0.1])
    with pytest.raises(DataError, match="positive"):
        fit_hinge([-1, 2, 3, 4], [0.1, 0.1, 0.1, 0.1])


def test_loss_optimal_range_and_advice():
    loss = 3.0 + 0.02 * np.log(RATIOS / 150) ** 2
    rng = loss_optimal_range(RATIOS, loss, tolerance=0.01)
    assert rng.low < 150 < rng.high and rng.recommended == rng.low
    with pytest.raises(ConfigError):
        loss_optimal_range(RATIOS, loss, tolerance=-1)


def test_read_widthdepth_csv(tmp_path):
    r, y = _hinge_data()
    path = tmp_path / "sweep.csv"
    rows = ["hidden,layers,A0,loss"] + [f"{h},{n},{a},{3 + 0.01 * i}" for i, ((h, n), a) in enumerate(zip(SWEEP, y, strict=True))]
    path.write_text("\n".join(rows))
    data = read_widthdepth(path)
    np.testing.assert_allclose(data["ratio"], RATIOS)
    assert set(data) == {"ratio", "limit", "loss"}
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    with pytest.raises(DataError, match="ratio column"):
        read_widthdepth(bad)


def test_non_embedding_params_formula():
    assert non_embedding_params(768, 16) == pytest.approx(11.5 * 768**2 * 16)
    assert set(PAPER_SHAPES) == {"0.1B", "0.2B", "0.4B", "0.8B", "1.2B", "2.4B"}


def test_scale_comparison_on_paper_silu_curves(data_dir):
    curves = [read_curve(data_dir / f"{s}_silu.json") for s in ("0.1b", "0.4b", "1.2b")]
    fits = [fit_law(c, "silu", interval="profile") for c in curves]
    cmp = compare_limits(fits, [params_for(f, c.meta) for f, c in zip(fits, curves, strict=True)],
                         tokens_per_param=np.array([30.0, 100.0]))
    assert [r.curve for r in cmp.rows] == ["0.1b_silu", "0.4b_silu", "1.2b_silu"]
    assert all(r.identified for r in cmp.rows)
    assert cmp.spread < 0.05  # A0 varies weakly with scale
    slopes = np.array([r.slope for r in cmp.rows])
    assert np.all(slopes[np.isfinite(slopes)] > 0)  # SiLU activation rises with data
    assert cmp.to_dict()["models"][0]["n_params"] == pytest.approx(non_embedding_params(768, 16))

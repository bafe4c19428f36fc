"""The width-depth figure draws a hinge only over identified limits, and renders when none is identified."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def _row(ratio, limit, identified):
    return {"cell": f"c{ratio}", "ratio": ratio, "limit": limit, "low": limit - 0.01, "high": limit + 0.01,
            "identified": identified, "final_loss": 4.0 + 0.01 * ratio}


@pytest.mark.parametrize("identified", [False, True])
def test_widthdepth_figure_with_a_hinge(tmp_path, identified):
    from sparsinglaw.report import study_figures as sf

    rows = [_row(r, 0.3 + 0.01 * r, identified) for r in (4, 8, 16, 32)]
    hinge = {"bottleneck": 16.0, "low": 8.0, "high": 32.0, "plateau": 0.46, "slope": 0.01}
    analysis = SimpleNamespace(widthdepth=[{"activation": "silu", "tokens": 3145728, "rows": rows, "hinge": hinge,
                                            "loss_range": None}])
    fig = sf.widthdepth_figure(analysis, tmp_path)
    assert fig is not None
    assert list(tmp_path.glob("*.png")) and list(tmp_path.glob("*.csv"))

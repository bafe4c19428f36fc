"""The metric comparison on a pretrained model: every metric's points, the PPL-p% search's passes on the
CETT curve, and a search that starts where the measured CETT points put the crossing."""

from __future__ import annotations

import math

import pytest
from helpers import saved_tiny_model

from sparsinglaw.study.pretrained import _values, metric_comparison, start_from


def test_start_from_reads_the_crossing_of_a_power_law():
    # PPL ratio - 1 = 3 c^2: the crossing of 1.01 is at c = sqrt(0.01 / 3)
    points = [{"metric": "cett", "value": c, "ppl_ratio": 1 + 3 * c**2} for c in (0.02, 0.1)]
    points.append({"metric": "topk", "value": 0.5, "ppl_ratio": 1.3})
    assert start_from(points, 1.0) == pytest.approx(math.sqrt(0.01 / 3), rel=1e-9)
    assert start_from(points[:1], 1.0) is None  # one CETT point: no slope, the default start
    flat = [{"metric": "cett", "value": c, "ppl_ratio": 0.999} for c in (0.02, 0.1)]
    assert start_from(flat, 1.0) is None


def test_cett_gets_its_ends_and_the_other_metrics_n_points():
    values = _values(3)
    assert values["cett"] == [0.02, 0.1]
    assert len(values["topk"]) == len(values["fat"]) == 3


def test_metric_comparison_on_a_small_model(tmp_path):
    path = saved_tiny_model(tmp_path / "model")
    result = metric_comparison(path, max_tokens=512, seq_len=64, n_points=3, p=1.0)
    by_metric = {m: [q for q in result["points"] if q["metric"] == m] for m in ("topk", "fat", "cett")}
    assert [len(by_metric["topk"]), len(by_metric["fat"])] == [3, 3]
    pplp = result["pplp"]
    # the CETT curve: its two fixed ends plus every pass of the search
    assert len(by_metric["cett"]) == 2 + pplp["sparse_passes"] and pplp["sparse_passes"] >= 1
    assert [q["value"] for q in by_metric["cett"]] == sorted(q["value"] for q in by_metric["cett"])
    assert all(0.0 <= q["activation_ratio"] <= 1.0 for q in result["points"])
    assert result["tokens"] == 512 and 0.0 < pplp["cett"] < 1.0

"""The metric comparison on a pretrained model: every metric's points, the PPL-p% search's passes on the
CETT curve, and a search that starts where the measured CETT points put the crossing."""

from __future__ import annotations

import math

import pytest

from helpers import saved_tiny_model
from sparsinglaw.study.pretrained import _values, answer_point, metric_comparison, start_from


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
    # the answer is read between the search's passes (no pass of its own), as `measure` reports it
    assert pplp["activation"] in ("measured", "interpolated", "extrapolated") and pplp["ppl_ratio"] == 1.01
    ratios = [q["activation_ratio"] for q in by_metric["cett"]]
    if pplp["activation"] == "interpolated":
        assert min(ratios) <= pplp["activation_ratio"] <= max(ratios)


def test_answer_point_reads_between_the_passes_around_it():
    points = [{"metric": "cett", "value": c, "activation_ratio": a} for c, a in ((0.02, 0.8), (0.04, 0.6), (0.1, 0.5))]
    points.append({"metric": "cett", "value": 0.04, "activation_ratio": 0.6})  # a pass at a fixed point's value
    answer = answer_point(points, 0.0282842712, 1.0)  # halfway between 0.02 and 0.04 in log c
    assert answer["activation_ratio"] == pytest.approx(0.7, abs=1e-6) and answer["activation"] == "interpolated"
    assert answer["passes"] == pytest.approx([0.02, 0.04]) and answer["ppl_ratio"] == 1.01

"""Sharded measurement over 2 CPU processes (gloo) gives the single-process result, for every target."""

from __future__ import annotations

import json

import pytest
import torch.multiprocessing as mp

from dist_worker import INPUT_CONFIG, measure_inputs_sharded, measure_sharded
from helpers import random_eval_data, tiny_llama
from sparsinglaw.inputs import InputConfig, measure_inputs
from sparsinglaw.measure import MeasureConfig, measure


@pytest.mark.parametrize("metric", ["pplp"])
def test_two_processes_match_one(tmp_path, metric):
    mp.spawn(measure_sharded, args=(2, str(tmp_path / "init"), str(tmp_path), metric), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    single = measure(tiny_llama("silu", seed=3), random_eval_data(n_sequences=10),
                     MeasureConfig(metric=metric, cett=0.1, p=1.0, batch_size=2))
    for sharded in ranks:
        assert sharded["activation_ratio"] == pytest.approx(single.activation_ratio, abs=1e-9)
        assert sharded["ppl_ratio"] == pytest.approx(single.ppl_ratio, rel=1e-9)
        assert sharded["dense_ppl"] == pytest.approx(single.dense_ppl, rel=1e-9)
        assert [layer["threshold"] for layer in sharded["layers"]] == pytest.approx(single.thresholds, rel=1e-6)
        assert len(sharded["search"]) == len(single.search)
        for theirs, mine in zip(sharded["search"], single.search):
            assert theirs == pytest.approx(mine, rel=1e-6)


def test_two_processes_match_one_for_projection_inputs(tmp_path):
    """The input target shards its dense statistics and sparse passes like the FFN target: the searches take
    the same steps and land on the same answers, thresholds and kept shares."""
    mp.spawn(measure_inputs_sharded, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"inputs{r}.json").read_text()) for r in range(2)]
    single = measure_inputs(tiny_llama("silu", seed=3), random_eval_data(n_sequences=10), InputConfig(**INPUT_CONFIG))
    assert single.forward_passes > 3  # a search ran: the ranks had to stay in lock-step
    for sharded in ranks:
        assert sharded["dense_ppl"] == pytest.approx(single.dense_ppl, rel=1e-9)
        assert sharded["forward_passes"] == single.forward_passes
        for theirs, mine in zip(sharded["methods"], single.methods, strict=True):
            assert theirs["value"] == pytest.approx(mine.value, rel=1e-6)
            assert theirs["ppl_ratio"] == pytest.approx(mine.ppl_ratio, rel=1e-9)
            assert theirs["kept_share"] == pytest.approx(mine.kept_share, rel=1e-9)
            assert [p["threshold"] for p in theirs["projections"]] == pytest.approx(
                [p.threshold for p in mine.projections], rel=1e-6)
            assert len(theirs["search"]) == len(mine.search)
            for their_pass, my_pass in zip(theirs["search"], mine.search):
                assert their_pass == pytest.approx(my_pass, rel=1e-6)

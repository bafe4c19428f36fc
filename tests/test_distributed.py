"""Sharded measurement over 2 CPU processes (gloo) gives the single-process result."""

from __future__ import annotations

import json

import pytest
import torch.multiprocessing as mp

from dist_worker import measure_sharded
from helpers import random_eval_data, tiny_llama
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

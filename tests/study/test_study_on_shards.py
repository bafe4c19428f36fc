"""A study on token shards: every cell trains on them with their tokenizer, keeps no copy of the corpus, and
is tracked on the shards' validation sequences."""

from __future__ import annotations

import numpy as np
from study_helpers import mini_config

from sparsinglaw.data.shard_writer import ShardSettings, write_shards
from sparsinglaw.data.shards import TokenShards
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.store.runs import read_data_meta
from sparsinglaw.study.runner import run_study
from sparsinglaw.track.tracker import validation_data


def test_mini_study_on_shards(study_corpus, tmp_path):
    shards = tmp_path / "shards"
    write_shards(ShardSettings(str(study_corpus), validation_fraction=0.1), shards, vocab_size=300, progress=False)
    cfg = mini_config(study_corpus, tmp_path / "study", f"base.data.source='{shards}'", "activations=['relu']")
    summary = run_study(cfg, report=False, echo=lambda *_: None)
    assert summary["run"] == 1
    (cell,) = cfg.cells()
    assert not (tmp_path / "study" / "tokenizer").exists()  # no study tokenizer: the shards bring theirs
    assert read_data_meta(cell.run_dir)["shards"] == str(shards.resolve())
    assert not list((cell.run_dir / "data").glob("*.npy"))
    expected = TokenShards(shards).validation_sequences(32, cfg.track.max_tokens)
    np.testing.assert_array_equal(validation_data(cell.run_dir, cfg.track.max_tokens).input_ids.numpy(), expected)
    rows = ResultsStore(cell.run_dir).measurements(metric=cfg.track.metric)
    assert len(rows) == 8 and all(r["activation_ratio"] is not None for r in rows)

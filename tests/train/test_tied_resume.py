"""Resuming a run of a model with tied embeddings prints no false "missing keys ['lm_head.weight']" warning,
while any other missing key is still reported."""

from __future__ import annotations

import logging

from train_helpers import tiny_dict

from sparsinglaw.train.checkpoints import TiedKeysFilter


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("transformers.trainer", logging.WARNING, __file__, 1, message, None, None)


def test_only_the_tied_output_embedding_is_silenced():
    keep = TiedKeysFilter().filter
    assert not keep(_record("There were missing keys in the checkpoint model loaded: ['lm_head.weight']."))
    assert keep(_record("There were missing keys in the checkpoint model loaded: ['model.norm.weight']."))
    assert keep(_record("There were missing keys in the checkpoint model loaded: ['lm_head.weight', 'x']."))
    assert keep(_record("Something else entirely"))


def test_resuming_a_tied_model_is_quiet(corpus, tmp_path, capfd):
    from sparsinglaw.train import TrainConfig, train

    first = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "run", token_budget=1024))
    assert first.model.tie_embeddings
    train(first)
    capfd.readouterr()
    resumed = train(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "run", token_budget=1536)), force=True)
    err = capfd.readouterr().err
    assert resumed.tokens_seen == 1536
    assert "missing keys" not in err

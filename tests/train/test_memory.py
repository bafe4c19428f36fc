"""A run whose model and optimizer state cannot fit in memory is refused before anything is written."""

from __future__ import annotations

import pytest

from sparsinglaw.errors import ConfigError
from sparsinglaw.train.config import load_config
from sparsinglaw.train.memory import BYTES_PER_PARAMETER, check_training_fits
from sparsinglaw.train.modeling import describe


def test_the_check_counts_weights_gradients_and_adam_state(tmp_path):
    cfg = load_config("tiny", [f"run_dir={tmp_path / 'run'}"])
    count = describe(cfg.model, cfg.tokenizer.vocab_size, cfg.seq_len)["parameters"]["total"]
    check_training_fits(cfg, available=count * BYTES_PER_PARAMETER)  # exactly enough: accepted
    with pytest.raises(ConfigError, match=r"training needs at least .*\(model.n_params"):
        check_training_fits(cfg, available=count * BYTES_PER_PARAMETER - 1)
    assert not (tmp_path / "run").exists()


def test_a_huge_run_is_refused_by_train_itself(tmp_path):
    from sparsinglaw.train.trainer import train

    cfg = load_config("tiny", [f"run_dir={tmp_path / 'run'}", "model.hidden_size=8192", "model.num_layers=64"])
    with pytest.raises(ConfigError, match="GiB of memory is available"):
        train(cfg)
    assert not (tmp_path / "run").exists()

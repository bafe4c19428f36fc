"""Loading refuses what cannot work: configs transformers rejects, models too big for memory, sequences longer
than the model's positions; each as one actionable line."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import tiny_llama
from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.models.loading import (
    check_fits_in_memory,
    check_seq_len,
    load_model,
    max_positions,
    parameter_count,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    tiny_llama().save_pretrained(path)
    return path


def _variant(model_dir, tmp_path, **changes):
    config = json.loads((model_dir / "config.json").read_text())
    config.update(changes)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


@pytest.mark.parametrize("changes,phrase", [
    ({"hidden_size": 65}, "not a multiple of the number of attention heads"),
    ({"num_hidden_layers": "x"}, "expected int"),
    ({"num_attention_heads": 0}, "is invalid"),
])
def test_configs_transformers_rejects_are_one_line_model_errors(model_dir, tmp_path, changes, phrase):
    with pytest.raises(ModelError, match=phrase) as caught:
        load_model(_variant(model_dir, tmp_path, **changes))
    assert "\n" not in str(caught.value)


def test_parameters_are_counted_without_memory_and_too_big_is_refused(model_dir):
    model = tiny_llama()
    count = parameter_count(model.config)
    assert count == sum(p.numel() for p in model.parameters())
    need = count * 4
    check_fits_in_memory(model.config, "tiny", torch.float32, available=need)  # just fits
    with pytest.raises(ModelError, match=r"GiB in float32, but only .* GiB of memory is available"):
        check_fits_in_memory(model.config, "tiny", torch.float32, available=need - 1)
    check_fits_in_memory(model.config, "tiny", torch.bfloat16, available=need // 2)  # half the bytes


def test_sequence_longer_than_the_positions_is_refused():
    model = tiny_llama()  # max_position_embeddings=256
    assert max_positions(model.config) == 256
    check_seq_len(model, 256)
    with pytest.raises(ConfigError, match="--seq-len 257 is beyond the model's 256 positions"):
        check_seq_len(model, 257)
    check_seq_len(torch.nn.Linear(2, 2), 10**6)  # no config: no limit known

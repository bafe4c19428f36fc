"""A GGUF file is converted once: later loads read the converted copy and give the same model and tokenizer."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from helpers import smollm2_gguf_path
from sparsinglaw.models import gguf_cache
from sparsinglaw.models.loading import load_model


def test_the_key_follows_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSINGLAW_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x" * 10)
    first = gguf_cache.converted_dir(gguf)
    assert first.parent == tmp_path / "cache" / "gguf" and first.name.startswith("m-10-")
    os.utime(gguf, ns=(1, 1))  # a replaced file (other mtime) gets another copy
    assert gguf_cache.converted_dir(gguf) != first
    first.mkdir(parents=True)
    assert gguf_cache.cached_copy(gguf) is None  # no completion marker: not a copy
    monkeypatch.setenv("SPARSINGLAW_GGUF_CACHE", "0")
    assert not gguf_cache.enabled()


def test_smollm2_loads_from_its_converted_copy(tmp_path, monkeypatch, caplog):
    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("SmolLM2 GGUF not found: run ./dev test (it fetches it)")
    monkeypatch.setenv("SPARSINGLAW_CACHE", str(tmp_path))
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    assert gguf_cache.cached_copy(path) is None
    converted, tokenizer = load_model(str(path), hidden_act="relu")  # converts, and writes the copy
    copy = gguf_cache.cached_copy(path)
    assert copy is not None and (copy / "model.safetensors").is_file()
    with caplog.at_level(logging.WARNING, logger="sparsinglaw"):
        cached, cached_tokenizer = load_model(str(path))  # from the copy
    # The caller's override is not the file's: the copy keeps the GGUF's activation, and still warns.
    assert converted.config.hidden_act == "relu" and cached.config.hidden_act == "silu"
    assert any("does not record the FFN activation" in r.getMessage() for r in caplog.records)
    a, b = converted.state_dict(), cached.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    text = "Sparsity of the FFN, measured per token: 42%."
    assert tokenizer(text).input_ids == cached_tokenizer(text).input_ids
    assert tokenizer.eos_token == cached_tokenizer.eos_token and len(tokenizer) == len(cached_tokenizer)

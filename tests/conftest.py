"""Shared fixtures (helpers live in helpers.py: import from there, never from conftest)."""

from __future__ import annotations

import os

import pytest
import torch

from helpers import random_eval_data, smollm2_gguf_path, tiny_llama


@pytest.fixture(autouse=True)
def seeded_torch():
    """Each test draws its unseeded tensors from the same stream whatever ran before it, so a failure
    reproduces alone (CI once failed a tolerance on one unlucky draw of x that a rerun would not have)."""
    torch.manual_seed(0)


@pytest.fixture
def tiny_model():
    return tiny_llama()


@pytest.fixture
def eval_data():
    return random_eval_data()


@pytest.fixture(scope="session")
def smollm2_load():
    """The real SmolLM2-135M-Instruct loaded once per session through our loader from its GGUF, without
    stating the activation (so the loader's assumed-default warning is recorded): model, tokenizer, warnings."""
    import logging

    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("SmolLM2 GGUF not found: run ./dev test (it fetches it), or set SPARSINGLAW_SMOLLM2_GGUF")
    from sparsinglaw.models.loading import load_model

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("sparsinglaw")
    logger.addHandler(handler)
    try:
        model, tokenizer = load_model(str(path))
    finally:
        logger.removeHandler(handler)
    return {"model": model, "tokenizer": tokenizer, "warnings": [r.getMessage() for r in records]}


@pytest.fixture(scope="session")
def smollm2(smollm2_load):
    """(model, tokenizer) of the real SmolLM2-135M-Instruct."""
    return smollm2_load["model"], smollm2_load["tokenizer"]


@pytest.fixture(scope="session")
def smollm2_ppl1(smollm2):
    """PPL-1% of SmolLM2 on 512 tokens of the built-in corpus (8 x 64: enough sequences for an interval),
    shared by the real-model tests: (calibration data, result)."""
    from sparsinglaw.data import build_eval_data, builtin_documents
    from sparsinglaw.measure import MeasureConfig, measure

    model, tokenizer = smollm2
    data = build_eval_data(tokenizer, builtin_documents(), seq_len=64, max_tokens=512)
    config = MeasureConfig(metric="pplp", p=1.0, tolerance=1e-3, batch_size=8)
    return data, measure(model, data, config, tokenizer=tokenizer, model_name="SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def hf_datasets_cache(tmp_path_factory):
    """lm-eval's JSON datasets are built into a throwaway cache, not the user's (offline: helpers sets
    HF_HUB_OFFLINE)."""
    import datasets.config

    mp = pytest.MonkeyPatch()
    mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf_datasets"))
    yield
    mp.undo()

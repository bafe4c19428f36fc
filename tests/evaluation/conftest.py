"""Fixtures for the lm-eval integration and export tests: a local multiple-choice task and a tiny trained model."""

from __future__ import annotations

import copy

import pytest

from helpers import text_tokenizer, tiny_llama
from sparsinglaw.data.mc_task import write_mc_task

TASK = "sl_local_mc"


@pytest.fixture(scope="session")
def mc_task(tmp_path_factory):
    """(include path, task name) of the local multiple-choice task."""
    return write_mc_task(tmp_path_factory.mktemp("lm_eval_tasks"), task=TASK), TASK


@pytest.fixture(scope="session", autouse=True)
def _offline_datasets(hf_datasets_cache):
    """Every evaluation test builds lm-eval's datasets in the throwaway cache (tests/conftest.py)."""


@pytest.fixture(scope="session")
def tiny_lm():
    """A tiny random Llama (its FFNs matter to its predictions), a real-text tokenizer trained in-process,
    and a copy of the model that never gets a hook."""
    tokenizer = text_tokenizer()
    model = tiny_llama(vocab=len(tokenizer))
    return model, tokenizer, copy.deepcopy(model)


@pytest.fixture(scope="session")
def tiny_thresholds(tiny_lm):
    """CETT-0.2 thresholds of the tiny model on 1024 tokens of the built-in corpus (one dense, one sparse
    pass; PPL-p% is exercised on SmolLM2)."""
    from sparsinglaw.data import build_eval_data, builtin_documents
    from sparsinglaw.measure import MeasureConfig, measure
    from sparsinglaw.thresholds import Thresholds

    model, tokenizer, _ = tiny_lm
    data = build_eval_data(tokenizer, builtin_documents()[60:80], seq_len=64, max_tokens=1024)
    result = measure(model, data, MeasureConfig(metric="cett", cett=0.2, level=0.0), tokenizer=tokenizer)
    return Thresholds.from_result(result, "llama"), result


@pytest.fixture(scope="session")
def tiny_dir(tiny_lm, tmp_path_factory):
    """The tiny model and tokenizer saved as a transformers directory (for the CLI)."""
    model, tokenizer, _ = tiny_lm
    path = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_thresholds_file(tiny_thresholds, tmp_path_factory):
    return tiny_thresholds[0].save(tmp_path_factory.mktemp("thresholds") / "tiny.json")

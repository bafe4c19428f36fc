"""Tiny training setups shared by the training tests: a small JSONL corpus and a seconds-long config.

Everything runs single-threaded (``torch.set_num_threads(1)`` here, ``OMP_NUM_THREADS=1`` in subprocesses)
so in-process and subprocess runs do the same float arithmetic, and the tests share 2 cores politely.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_dict


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """40 documents of the built-in corpus as JSONL (reading the built-in corpus costs seconds per process)."""
    from sparsinglaw.data import builtin_documents

    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    docs = [d[:3000] for d in builtin_documents()[:40]]
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def finished_run(corpus, tmp_path_factory):
    """An uninterrupted tiny run (trained once per session): (config, outcome)."""
    from sparsinglaw.train import TrainConfig, train

    cfg = TrainConfig.from_dict(tiny_dict(corpus, tmp_path_factory.mktemp("runs") / "uninterrupted"))
    return cfg, train(cfg)


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A copy of the finished run that a test may track and change."""
    cfg, _ = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(cfg.run_dir, run_dir)
    return run_dir

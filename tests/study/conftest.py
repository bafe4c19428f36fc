"""A miniature study (two 2-layer models, ReLU and SiLU), run once per session, single-threaded."""

from __future__ import annotations

import pytest
import torch
from study_helpers import mini_config, write_corpus


@pytest.fixture(scope="session")
def study_corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "docs.jsonl")


@pytest.fixture(scope="session")
def mini_study(study_corpus, tmp_path_factory):
    """(config, summary) of a finished miniature study with its report."""
    from sparsinglaw.study import run_study

    threads = torch.get_num_threads()
    cfg = mini_config(study_corpus, tmp_path_factory.mktemp("studies") / "mini")
    try:
        summary = run_study(cfg, echo=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    return cfg, summary

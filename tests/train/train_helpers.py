"""Helpers for the training tests (a module, not conftest, so tests can import them by name)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import subprocess_env  # noqa: F401  (re-exported for the tests here)

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

# 12 optimizer steps of 4 x 32 tokens, a checkpoint every 4 steps.
TINY_OVERRIDES = {
    "seq_len": 32, "batch_size": 4, "token_budget": 1536, "checkpoint_every_tokens": 512, "log_every_steps": 2,
    "progress": False, "tensorboard": False,
    "model": {"activation": "relu", "hidden_size": 32, "num_layers": 2, "head_dim": 16},
    "tokenizer": {"vocab_size": 300},
    "data": {"validation_fraction": 0.2, "validation_tokens": 256},
    "optim": {"lr": 0.003, "warmup_fraction": 0.25, "decay_fraction": 0.25},
}


def tiny_dict(corpus: Path, run_dir: Path, **changes) -> dict:
    data = json.loads(json.dumps(TINY_OVERRIDES))
    data["run_dir"] = str(run_dir)
    data["data"]["source"] = str(corpus)
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            data[section][name] = value
        else:
            data[key] = value
    return data


def write_config(corpus: Path, run_dir: Path, path: Path, **changes) -> Path:
    from sparsinglaw.train.config import TrainConfig

    TrainConfig.from_dict(tiny_dict(corpus, run_dir, **changes)).save(path)
    return path



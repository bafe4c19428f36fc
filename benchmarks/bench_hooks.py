"""Hook overhead and memory of the measurement passes.

    .venv/bin/python benchmarks/bench_hooks.py overhead     # SmolLM2, 2048 tokens
    .venv/bin/python benchmarks/bench_hooks.py memory       # peak RSS, 16k vs 128k tokens (subprocesses)

Overhead: a dense pass with measurement hooks (activity counting) and one with CETT statistics, each
against a plain forward of the same model and tokens, interleaved and medians taken (target <= 1.10x for
the counting hooks). Memory: the full PPL-p% dense statistics pass on a small Llama over 16k and 128k
random tokens, each in a fresh process; the ratio of peak RSS (target <= 1.2x).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from common import english, smollm2

from sparsinglaw.measure import MeasureConfig, Measurement


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def overhead(tokens: int = 2048, repeats: int = 3) -> None:
    model, tokenizer = smollm2()
    data = english(tokenizer, tokens)

    def plain():
        with torch.no_grad():
            for _, ids in data.batches(4):
                model(input_ids=ids, use_cache=False)

    def counting():
        Measurement(model, data, MeasureConfig(metric="zero")).dense(cett_curves=False)

    def statistics_pass():
        Measurement(model, data, MeasureConfig(metric="cett")).dense(cett_curves=True)

    plain()
    runs = {"plain": [], "counting": [], "cett": []}
    for _ in range(repeats):
        runs["plain"].append(timed(plain))
        runs["counting"].append(timed(counting))
        runs["cett"].append(timed(statistics_pass))
    base = statistics.median(runs["plain"])
    print(f"plain forward, {data.n_tokens} tokens: {base:.2f} s (median of {repeats})")
    print(f"dense pass with counting hooks: {statistics.median(runs['counting']) / base:.3f}x (target <= 1.10x)")
    print(f"dense pass with CETT statistics: {statistics.median(runs['cett']) / base:.3f}x")


def memory_child(tokens: int) -> None:
    from helpers import random_eval_data, tiny_llama

    torch.set_num_threads(2)
    model = tiny_llama("relu", layers=4, hidden=128, inter=320, vocab=512)
    data = random_eval_data(n_sequences=tokens // 256, seq_len=256, vocab=512)
    measurement = Measurement(model, data, MeasureConfig(metric="cett", batch_size=8))
    measurement.dense(cett_curves=True)
    measurement.at("cett", 0.1)
    print(json.dumps({"tokens": data.n_tokens, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def memory() -> None:
    peaks = {}
    for tokens in (16_384, 131_072):
        out = subprocess.run([sys.executable, __file__, "memory-child", str(tokens)], capture_output=True, text=True, check=True)
        peaks[tokens] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
        print(f"{tokens} tokens: peak RSS {peaks[tokens]:.0f} MB")
    print(f"ratio 128k / 16k: {peaks[131_072] / peaks[16_384]:.3f} (target <= 1.2)")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "overhead"
    {"overhead": overhead, "memory": memory}.get(what, lambda: memory_child(int(sys.argv[2])))()

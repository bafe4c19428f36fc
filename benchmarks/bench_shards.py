"""Token shards: ``sparsinglaw data`` speed (MB of text per second) and peak memory against corpus size, and the
training data path's tokens per second against the tiny model's training speed.

The corpus is generated text: documents of 150-900 words drawn from the built-in corpus's vocabulary with
its word frequencies (so BPE sees a natural-looking Zipf distribution), written as JSONL. The tokenizer
(byte-level BPE, vocabulary 8,192) is trained once on the first 5 MB and given to every write, so the
write figures are tokenizing and writing only. Each write runs ``sparsinglaw data`` in a child process;
its peak RSS is the child's ``ru_maxrss``. The data path is what the Trainer reads: ``OrderedTrainData`` on
the memory-mapped shards (seeded permutation, one sequence per item) through a DataLoader with the
Trainer's collator, against a plain training loop (forward, backward, AdamW) of the ``tiny`` preset's
model (d = 64, L = 2) on batches of the same shape, in this one process.

    .venv/bin/python benchmarks/bench_shards.py [--sizes-mb 20 100] [--shard-tokens N] [--seq-len 128] [--batch 8]

Peak memory is the interpreter with transformers and the tokenizer (about 350 MiB) plus one shard's buffer
(2 bytes x --shard-tokens at uint16: 64 MiB at the default) plus one batch; a corpus larger than one shard
adds nothing, which a --shard-tokens smaller than the corpus shows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def generate_corpus(path: Path, megabytes: float, seed: int = 0) -> int:
    """JSONL of generated documents until the file holds ``megabytes`` MB; returns its bytes."""
    from sparsinglaw.data import builtin_documents

    counts = Counter(w for d in builtin_documents() for w in re.findall(r"[A-Za-z]+[.,;:]?", d))
    words = np.array(list(counts))
    weights = np.array(list(counts.values()), dtype=float)
    rng = np.random.default_rng(seed)
    target, written = int(megabytes * 1e6), 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            picks = rng.choice(len(words), size=(64, 900), p=weights / weights.sum())
            for row, n in zip(picks, rng.integers(150, 900, size=64), strict=True):
                line = json.dumps({"text": " ".join(words[row[:n]])}) + "\n"
                handle.write(line)
                written += len(line)
    return path.stat().st_size


def train_tokenizer(corpus: Path, out: Path, vocab: int) -> float:
    from sparsinglaw.data.sources import iter_documents
    from sparsinglaw.data.tokenizer import _save_atomically, train_bpe

    started = time.perf_counter()
    _save_atomically(train_bpe(iter_documents(corpus), vocab, max_chars=5_000_000), out)
    return time.perf_counter() - started


def write_in_child(corpus: Path, out: Path, tokenizer: Path, shard_tokens: int) -> dict:
    """``sparsinglaw data`` in a child process: wall seconds, peak RSS (MiB), the manifest's totals."""
    cmd = [sys.executable, "-m", "sparsinglaw", "-q", "data", str(corpus), "-o", str(out), "--tokenizer",
           str(tokenizer), "--shard-tokens", str(shard_tokens), "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"sparsinglaw data failed: {proc.stderr.read().decode()[-2000:]}")
    totals = json.loads(stdout)["totals"]
    mb = corpus.stat().st_size / 1e6
    cpu = usage.ru_utime + usage.ru_stime
    return {"corpus_mb": round(mb, 1), "seconds": round(seconds, 1), "mb_per_s": round(mb / seconds, 2),
            "cpu_seconds": round(cpu, 1), "mb_per_cpu_s": round(mb / cpu, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "tokens": totals["train_tokens"] + totals["valid_tokens"],
            "shard_mib": round(totals["bytes"] / 2**20, 1), "shards": len(json.loads(stdout)["shards"])}


def data_path_tokens_per_s(shards: Path, seq_len: int, batch: int, batches: int) -> float:
    import torch
    from torch.utils.data import DataLoader, SequentialSampler
    from transformers import default_data_collator

    from sparsinglaw.data.shards import TokenShards
    from sparsinglaw.train.data import OrderedTrainData

    sequences = TokenShards(shards).train_sequences(seq_len)
    data = OrderedTrainData(sequences, batches * batch, seed=0)
    loader = DataLoader(data, batch_size=batch, sampler=SequentialSampler(data), collate_fn=default_data_collator)
    started = time.perf_counter()
    seen = 0
    for item in loader:
        assert item["input_ids"].dtype == torch.int64
        seen += int(item["input_ids"].numel())
    assert seen == batches * batch * seq_len
    return seen / (time.perf_counter() - started)


def tiny_training_tokens_per_s(seq_len: int, batch: int, steps: int) -> float:
    import torch

    from sparsinglaw.train.config import tiny_preset
    from sparsinglaw.train.modeling import build_model

    cfg = tiny_preset()
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.tokenizer.vocab_size, seq_len, bos_id=0, eos_id=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
    ids = torch.randint(0, cfg.tokenizer.vocab_size, (steps + 1, batch, seq_len))
    for step in range(steps + 1):
        if step == 1:  # the first step (allocation, warm-up) is not timed
            started = time.perf_counter()
        loss = model(input_ids=ids[step], labels=ids[step]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return steps * batch * seq_len / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[20, 100])
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--shard-tokens", type=int, default=2**25,
                        help="training tokens per shard: the writer's buffer, what peak memory grows to at most")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training loop")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        tmp = Path(tmp)
        corpora = {mb: tmp / f"corpus-{mb:g}mb.jsonl" for mb in args.sizes_mb}
        for mb, path in corpora.items():
            generate_corpus(path, mb)
        tokenizer = tmp / "tokenizer"
        report = {"tokenizer_seconds": round(train_tokenizer(corpora[min(corpora)], tokenizer, args.vocab), 1)}
        report["writes"] = [write_in_child(path, tmp / f"shards-{mb:g}", tokenizer, args.shard_tokens)
                            for mb, path in corpora.items()]
        largest = tmp / f"shards-{max(corpora):g}"
        data = data_path_tokens_per_s(largest, args.seq_len, args.batch, batches=2000)
        train = tiny_training_tokens_per_s(args.seq_len, args.batch, steps=30)
        report.update(data_path_tokens_per_s=round(data), tiny_training_tokens_per_s=round(train),
                      data_over_training=round(data / train, 1), seq_len=args.seq_len, batch=args.batch)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

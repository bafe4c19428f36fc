"""Size of the training corpora in characters, documents and tokens, and how long reading them takes.

For each corpus (the installed ``english`` and the shipped ``shakespeare``): the time ``load_documents``
takes in this process (cold: the first read of ``english`` parses its cleaned ``english.jsonl``; a missing
or stale one is cleaned first, minutes), the document-hash split the trainer uses (``document_split``, 5%
validation), a 2,048-token byte-level BPE trained as the trainer trains it (``train_bpe`` on the first
``--bpe-chars`` characters of the training side), and the tokens of the whole training side under it. The
last column is how many epochs a run of ``--budget`` tokens would read.

    .venv/bin/python benchmarks/bench_corpus.py [--corpus english shakespeare] [--bpe-chars 50000000]
"""

from __future__ import annotations

import argparse
import json
import time


def measure(source: str, vocab: int, bpe_chars: int, budget: int) -> dict:
    from sparsinglaw.data import document_split, load_documents
    from sparsinglaw.data.tokenizer import train_bpe

    start = time.perf_counter()
    docs = load_documents(source)
    read_s = time.perf_counter() - start
    train, valid = document_split(docs, 0.05)
    start = time.perf_counter()
    tokenizer = train_bpe(train, vocab, max_chars=bpe_chars)
    bpe_s = time.perf_counter() - start
    start = time.perf_counter()
    backend = tokenizer.backend_tokenizer
    tokens = sum(len(enc.ids) + 1 for enc in backend.encode_batch(train, add_special_tokens=False))  # + EOS
    tokenize_s = time.perf_counter() - start
    chars = sum(map(len, train))
    return {"source": source, "documents": len(docs), "characters": sum(map(len, docs)),
            "train_characters": chars, "valid_documents": len(valid), "train_tokens": tokens,
            "chars_per_token": chars / tokens, "epochs_at_budget": budget / tokens, "read_s": read_s,
            "bpe_s": bpe_s, "tokenize_s": tokenize_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["english", "shakespeare"])
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--bpe-chars", type=int, default=50_000_000, help="the trainer's max_train_chars")
    parser.add_argument("--budget", type=int, default=10_000_000, help="tokens of the longest reproduce cell")
    args = parser.parse_args()
    rows = [measure(source, args.vocab, args.bpe_chars, args.budget) for source in args.corpus]
    print(f"{'corpus':12s} {'docs':>7s} {'chars':>12s} {'train tokens':>13s} {'chars/tok':>9s} "
          f"{'epochs@' + format(args.budget, ',') :>16s} {'read s':>7s} {'BPE s':>6s} {'tok s':>6s}")
    for r in rows:
        print(f"{r['source']:12s} {r['documents']:7,d} {r['characters']:12,d} {r['train_tokens']:13,d} "
              f"{r['chars_per_token']:9.2f} {r['epochs_at_budget']:16.2f} {r['read_s']:7.1f} {r['bpe_s']:6.0f} "
              f"{r['tokenize_s']:6.0f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

"""Training and validation token data: every run reads memory-mapped token shards, by sequence.

A ``data.source`` that is a token-shard directory (``sparsinglaw data``, ``sparsinglaw.data.shards``) is read
in place (``prepare_shard_data``). Any other corpus (the shipped ones, a local file, a ``datasets`` name) is
written once into the run's own shards, ``RUN_DIR/data/shards``, through the same writer
(``data.shard_writer``) and then read the same way (``prepare_corpus_data``): its documents are split by
the rule of ``data.document_split``, tokenized with EOS after each, the training side up to the token
budget (plus one sequence), the validation side up to ``data.validation_tokens``.

Packing joins documents with EOS and cuts the stream into ``seq_len`` sequences (no padding, so tokens
seen = steps x tokens per step, exactly). The training order is fixed up front: the sequence at position i
of the run is ``permutation(seed, epoch)[i mod n]``. ``Trainer`` reads this dataset sequentially, so after
a restart it skips the batches already seen and continues with exactly the same ones, on any number of
processes (accelerate shards the sequential batches between ranks).

Runs started before shards kept their tokens in ``RUN_DIR/data/{train,valid}.npy``: resuming one converts
that cache into the run's shards once (the same tokens, so the same sequences and order) and removes it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sparsinglaw.data import document_split, load_documents
from sparsinglaw.data.corpus import is_validation_document
from sparsinglaw.data.shard_writer import ShardSettings, shards_from_tokens, tokenizer_sha256, write_shards
from sparsinglaw.data.shards import TokenShards, is_shard_dir, read_manifest
from sparsinglaw.data.tokenizer import load_tokenizer, prepare_tokenizer
from sparsinglaw.errors import DataError
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.store.runs import read_data_meta

log = logging.getLogger("sparsinglaw")

RUN_SHARDS = "shards"  # RUN_DIR/data/shards: the shards a run writes from its corpus


def corpus_documents(cfg, max_chars: int | None = None) -> list[str]:
    """The documents of ``cfg`` (a ``DataConfig``), both sides, in their fixed order (``data.max_documents``
    applied). With ``cfg.streaming`` a ``datasets`` dataset is read as a stream until its training side
    holds ``max_chars`` characters, so a huge corpus is never downloaded or loaded whole."""
    if cfg.streaming:
        return _streamed_documents(cfg, max_chars)
    docs = load_documents(cfg.source, text_field=cfg.text_field, split=cfg.split)
    return docs[: cfg.max_documents] if cfg.max_documents is not None else docs


def split_documents(cfg, max_chars: int | None = None) -> tuple[list[str], list[str]]:
    """(train, validation) documents of ``cfg`` (a ``DataConfig``); no document is on both sides."""
    return document_split(corpus_documents(cfg, max_chars), cfg.validation_fraction)


def _streamed_documents(cfg, max_chars: int | None) -> list[str]:
    try:
        import datasets

        stream = datasets.load_dataset(cfg.source, split=cfg.split, streaming=True)
    except Exception as err:  # datasets raises many types; all mean "could not open the stream"
        raise DataError(f"data.source={cfg.source!r}: cannot stream split {cfg.split!r}: "
                        f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    docs, chars = [], 0
    for number, record in enumerate(stream):
        doc = record.get(cfg.text_field)
        if not isinstance(doc, str):
            raise DataError(f"data.source={cfg.source!r} has no string column {cfg.text_field!r}; set data.text_field")
        if not doc.strip():
            continue
        docs.append(doc)
        if not is_validation_document(doc, cfg.validation_fraction):
            chars += len(doc)
        if (max_chars is not None and chars >= max_chars) or (cfg.max_documents and number + 1 >= cfg.max_documents):
            break
    return docs


def epochs(token_budget: int, train_sequences: int, seq_len: int) -> float:
    """Passes over the packed training text a budget makes (1.0 when the text is at least the budget:
    tokenization stops there, so every sequence is seen once; above 1 the corpus is cycled)."""
    return float(token_budget) / max(1, train_sequences * seq_len)


def _data_key(cfg, tokenizer) -> str:
    """What the run's own shards depend on: the data settings, the limits, the tokenizer's content."""
    return hashlib.sha256(json.dumps({
        "data": vars(cfg.data), "seq_len": cfg.seq_len, "budget": cfg.token_budget, "format": "shards",
        "tokenizer": tokenizer_sha256(tokenizer)}, sort_keys=True, default=str).encode()).hexdigest()[:16]


# The data settings a cache from before shards was keyed by (a setting added since cannot have been used).
LEGACY_DATA_FIELDS = ("source", "text_field", "split", "validation_fraction", "max_documents", "validation_tokens",
                      "streaming", "max_chars")


def _legacy_keys(cfg, tokenizer) -> set[str]:
    """The keys a ``.npy`` cache of the same data was stored under before shards: its tokenizer was named by
    its directory, or "" when trained in memory by the run's first start."""
    names = {"", tokenizer.name_or_path and Path(tokenizer.name_or_path).name}
    data = {name: getattr(cfg.data, name) for name in LEGACY_DATA_FIELDS}
    return {hashlib.sha256(json.dumps({
        "data": data, "seq_len": cfg.seq_len, "vocab": len(tokenizer), "budget": cfg.token_budget,
        "tokenizer": name}, sort_keys=True, default=str).encode()).hexdigest()[:16] for name in names}


def prepare_corpus_data(cfg, run_dir: Path):
    """(tokenizer, train sequences, validation array) of a run on a corpus: its shards in
    ``RUN_DIR/data/shards`` written from the corpus when missing or made for other settings (or converted
    from a cache of a run from before shards), then read as ``prepare_shard_data`` reads shards."""
    # ~4 characters per BPE token: 8 x budget characters leaves room; short data repeats in epochs.
    corpus = functools.cache(lambda: _two_sided(cfg.data, cfg.data.max_chars or 8 * cfg.token_budget))
    tokenizer = prepare_tokenizer(cfg.tokenizer, run_dir, _training_side(corpus, cfg.data.validation_fraction))
    cache, key = run_dir / "data", _data_key(cfg, tokenizer)
    meta, shards_dir = read_data_meta(run_dir), cache / RUN_SHARDS
    if meta.get("key") != key or not _complete(shards_dir):
        shutil.rmtree(shards_dir, ignore_errors=True)
        converted = meta.get("key") in _legacy_keys(cfg, tokenizer) and _convert_legacy_cache(cfg, run_dir, meta)
        if not converted:
            _write_run_shards(cfg, run_dir, corpus)
    train, valid = _open_sequences(cfg, run_dir, TokenShards(shards_dir), {"key": key, "shards": RUN_SHARDS},
                                   "raise data.validation_fraction or set data.validation_tokens=0")
    for name in ("train.npy", "valid.npy"):  # a cache from before shards: the shards now hold its tokens
        (cache / name).unlink(missing_ok=True)
    return tokenizer, train, valid


def _two_sided(cfg, max_chars: int | None) -> list[str]:
    """The corpus's documents, refused (one line) when they cannot fill both a training and a validation side."""
    docs = corpus_documents(cfg, max_chars)
    document_split(docs, cfg.validation_fraction)  # raises the one-line error of too few documents
    return docs


def _training_side(corpus, fraction: float):
    """The training documents of ``corpus()``, read only when iterated (a saved tokenizer never reads them)."""
    for doc in corpus():
        if not is_validation_document(doc, fraction):
            yield doc


def _complete(directory: Path) -> bool:
    return is_shard_dir(directory) and bool(read_manifest(directory).get("complete"))


def _run_shard_settings(cfg):
    return ShardSettings(source=str(cfg.data.source), text_field=cfg.data.text_field, split=cfg.data.split,
                         via_datasets=cfg.data.streaming, validation_fraction=cfg.data.validation_fraction,
                         train_token_limit=cfg.token_budget + cfg.seq_len,
                         valid_token_limit=cfg.data.validation_tokens)


def _write_run_shards(cfg, run_dir: Path, corpus) -> None:
    log.info("tokenizing %s into %s", cfg.data.source, run_dir / "data" / RUN_SHARDS)
    write_shards(_run_shard_settings(cfg), run_dir / "data" / RUN_SHARDS, tokenizer_path=str(run_dir / "tokenizer"),
                 progress=False, documents=lambda on_bytes: iter(corpus()))


def _convert_legacy_cache(cfg, run_dir: Path, meta: dict) -> bool:
    """The ``.npy`` cache of a run from before shards, rewritten as its shards (the same token streams);
    False when there is none to convert (or no validation sequence in it: shards need both sides)."""
    cache = run_dir / "data"
    if not ((cache / "train.npy").is_file() and (cache / "valid.npy").is_file()):
        return False
    train, valid = np.load(cache / "train.npy"), np.load(cache / "valid.npy")
    if not (train.size and valid.size):
        return False
    log.info("converting %s/{train,valid}.npy (%d + %d sequences) into %s", cache, len(train), len(valid),
             cache / RUN_SHARDS)
    shards_from_tokens(_run_shard_settings(cfg), cache / RUN_SHARDS, str(run_dir / "tokenizer"), train, valid,
                       (meta.get("train_documents", 0), meta.get("valid_documents", 0)))
    return True


def prepare_shard_data(cfg, run_dir: Path):
    """(tokenizer, train sequences, validation array) of a run whose ``data.source`` is a token-shard
    directory (``sparsinglaw data``): training sequences are read from the memory-mapped shards on demand,
    the validation ones (``data.validation_tokens``) from its validation shards. ``RUN_DIR/data/meta.json``
    records which shards the run reads, so a shard directory rewritten under a run is refused."""
    shards = TokenShards(cfg.data.source)
    if cfg.tokenizer.path and tokenizer_sha256(load_tokenizer(cfg.tokenizer.path)) != shards.tokenizer_sha256:
        raise DataError(f"tokenizer.path={cfg.tokenizer.path!r} is not the tokenizer of the shards in "
                        f"{shards.directory}; leave tokenizer.path unset (the shards bring theirs)")
    tokenizer = prepare_tokenizer(replace(cfg.tokenizer, path=str(shards.tokenizer_dir)), run_dir, [])
    old = read_data_meta(run_dir)
    if tokenizer_sha256(tokenizer) != shards.tokenizer_sha256 or old.get("shards_identity", shards.identity) != shards.identity:
        raise DataError(f"the shards in {shards.directory} changed since the run in {run_dir} started; "
                        "give the run its original shards or start a new run_dir")
    train, valid = _open_sequences(cfg, run_dir, shards, {"shards": str(shards.directory)},
                                   "set data.validation_tokens=0 or write the shards with a larger --validation-fraction")
    return tokenizer, train, valid


def _open_sequences(cfg, run_dir: Path, shards, meta: dict, hint: str):
    """(train sequences, validation array) of ``shards`` at the run's ``seq_len``, recorded with ``meta`` in
    ``RUN_DIR/data/meta.json`` (what the run reads, and its epochs); ``hint``: how to get validation tokens."""
    train = shards.train_sequences(cfg.seq_len)
    if len(train) == 0:
        raise DataError(f"data.source={cfg.data.source!r} gives fewer training tokens than one sequence "
                        f"(seq_len {cfg.seq_len}); use more text or a shorter seq_len")
    valid = shards.validation_sequences(cfg.seq_len, cfg.data.validation_tokens)
    if cfg.data.validation_tokens >= cfg.seq_len and len(valid) == 0:
        raise DataError(f"the validation documents of data.source={cfg.data.source!r} give fewer tokens than one "
                        f"sequence of {cfg.seq_len}; {hint}")
    totals = shards.manifest["totals"]
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "data" / "meta.json", {
        **meta, "shards_identity": shards.identity, "seq_len": cfg.seq_len,
        "train_sequences": len(train), "valid_sequences": len(valid), "train_documents": totals["train_documents"],
        "valid_documents": totals["valid_documents"], "epochs": epochs(cfg.token_budget, len(train), cfg.seq_len)})
    return train, valid


class OrderedTrainData(Dataset):
    """``length`` training examples drawn epoch by epoch from ``sequences`` in a seeded order: an (n, seq_len)
    array, or any sequence of token arrays (``data.shards.PackedSequences``: read from disk per example)."""

    def __init__(self, sequences, length: int, seed: int):
        if isinstance(sequences, np.ndarray):
            sequences = torch.from_numpy(np.ascontiguousarray(sequences, dtype=np.int64))
        self.sequences = sequences
        self.length, self.seed = length, seed
        self._orders: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.length

    def _order(self, epoch: int) -> torch.Tensor:
        if epoch not in self._orders:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._orders[epoch] = torch.randperm(len(self.sequences), generator=generator)
        return self._orders[epoch]

    def index(self, i: int) -> int:
        """Which packed sequence sits at position ``i`` of the run."""
        n = len(self.sequences)
        return int(self._order(i // n)[i % n])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.sequences[self.index(i)]
        if isinstance(ids, np.ndarray):
            ids = torch.from_numpy(ids)
        return {"input_ids": ids, "labels": ids}


class EvalSequences(Dataset):
    def __init__(self, sequences: np.ndarray):
        self.sequences = torch.from_numpy(np.ascontiguousarray(sequences, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.sequences[i], "labels": self.sequences[i]}

"""Training and validation token data: documents split by whole documents, tokenized, packed, cached.

Packing joins documents with EOS and cuts the stream into ``seq_len`` sequences (no padding, so tokens
seen = steps x tokens per step, exactly). The training order is fixed up front: the sequence at position i
of the run is ``permutation(seed, epoch)[i mod n]``. ``Trainer`` reads this dataset sequentially, so after
a restart it skips the batches already seen and continues with exactly the same ones, on any number of
processes (accelerate shards the sequential batches between ranks).

A ``data.source`` that is a token-shard directory (``sparsinglaw data``, ``sparsinglaw.data.shards``) is read
from its memory maps one sequence at a time instead (``prepare_shard_data``): nothing is tokenized or cached
in the run directory, the validation sequences come from the shards' validation side, and the order is the
same seeded permutation per epoch over all the shards' packed sequences. Other sources keep the cached
``RUN_DIR/data/*.npy`` path, so runs started before shards existed resume unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sparsinglaw.data import document_split, load_documents
from sparsinglaw.data.corpus import is_validation_document
from sparsinglaw.errors import DataError
from sparsinglaw.fileio import atomic_write_json

log = logging.getLogger("sparsinglaw")


def split_documents(cfg, max_chars: int | None = None) -> tuple[list[str], list[str]]:
    """(train, validation) documents of ``cfg`` (a ``DataConfig``); no document is on both sides.

    With ``cfg.streaming`` a ``datasets`` dataset is read as a stream until the training side holds
    ``max_chars`` characters, so a huge corpus is never downloaded or loaded whole.
    """
    if cfg.streaming:
        return _stream_split(cfg, max_chars)
    docs = load_documents(cfg.source, text_field=cfg.text_field, split=cfg.split)
    if cfg.max_documents is not None:
        docs = docs[: cfg.max_documents]
    return document_split(docs, cfg.validation_fraction)


def _is_validation(doc: str, fraction: float, seed: int = 0) -> bool:
    return is_validation_document(doc, fraction, seed)  # the rule of sparsinglaw.data.document_split


def _stream_split(cfg, max_chars: int | None) -> tuple[list[str], list[str]]:
    try:
        import datasets

        stream = datasets.load_dataset(cfg.source, split=cfg.split, streaming=True)
    except Exception as err:  # datasets raises many types; all mean "could not open the stream"
        raise DataError(f"data.source={cfg.source!r}: cannot stream split {cfg.split!r}: "
                        f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    train, valid, chars = [], [], 0
    for number, record in enumerate(stream):
        doc = record.get(cfg.text_field)
        if not isinstance(doc, str):
            raise DataError(f"data.source={cfg.source!r} has no string column {cfg.text_field!r}; set data.text_field")
        if not doc.strip():
            continue
        if _is_validation(doc, cfg.validation_fraction):
            valid.append(doc)
        else:
            train.append(doc)
            chars += len(doc)
        if (max_chars is not None and chars >= max_chars) or (cfg.max_documents and number + 1 >= cfg.max_documents):
            break
    if not train or not valid:
        raise DataError(f"data.source={cfg.source!r} streamed too few documents for a training and a validation side")
    return train, valid


def tokenize(tokenizer, docs: list[str], max_tokens: int | None = None, chunk: int = 256) -> np.ndarray:
    """One int32 stream, each document followed by EOS; batched through the fast tokenizer."""
    eos = tokenizer.eos_token_id
    parts: list[np.ndarray] = []
    total = 0
    for start in range(0, len(docs), chunk):
        for ids in tokenizer(docs[start : start + chunk], add_special_tokens=False)["input_ids"]:
            parts.append(np.asarray([*ids, eos], dtype=np.int32))
            total += len(ids) + 1
        if max_tokens is not None and total >= max_tokens:
            break
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def epochs(token_budget: int, train_sequences: int, seq_len: int) -> float:
    """Passes over the packed training text a budget makes (1.0 when the text is at least the budget:
    tokenization stops there, so every sequence is seen once; above 1 the corpus is cycled)."""
    return float(token_budget) / max(1, train_sequences * seq_len)


def read_data_meta(run_dir: str | Path) -> dict:
    """``RUN_DIR/data/meta.json`` (sequences, documents, characters, epochs), or {} before training."""
    try:
        return json.loads((Path(run_dir) / "data" / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def pack(stream: np.ndarray, seq_len: int) -> np.ndarray:
    n = len(stream) // seq_len
    return stream[: n * seq_len].reshape(n, seq_len)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        np.save(handle, array)
    tmp.replace(path)


def prepare_token_data(cfg, tokenizer, train_docs, valid_docs, run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) packed arrays, cached in ``RUN_DIR/data`` keyed by the data settings."""
    key = hashlib.sha256(json.dumps({
        "data": vars(cfg.data), "seq_len": cfg.seq_len, "vocab": len(tokenizer), "budget": cfg.token_budget,
        "tokenizer": tokenizer.name_or_path and Path(tokenizer.name_or_path).name,
    }, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache = run_dir / "data"
    meta_path = cache / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key:
        return np.load(cache / "train.npy"), np.load(cache / "valid.npy")
    train = pack(tokenize(tokenizer, train_docs, max_tokens=cfg.token_budget + cfg.seq_len), cfg.seq_len)
    if len(train) == 0:
        raise DataError(f"data.source={cfg.data.source!r} gives fewer training tokens than one sequence "
                        f"(seq_len {cfg.seq_len}); use more text or a shorter seq_len")
    valid_tokens = cfg.data.validation_tokens
    valid = pack(tokenize(tokenizer, valid_docs, max_tokens=valid_tokens), cfg.seq_len)[: valid_tokens // cfg.seq_len]
    if valid_tokens >= cfg.seq_len and len(valid) == 0:
        raise DataError(f"the validation documents give fewer tokens than one sequence of {cfg.seq_len}; "
                        "raise data.validation_fraction or set data.validation_tokens=0")
    cache.mkdir(parents=True, exist_ok=True)
    _atomic_save_npy(cache / "train.npy", train)
    _atomic_save_npy(cache / "valid.npy", valid)
    atomic_write_json(meta_path, {"key": key, "train_sequences": len(train), "valid_sequences": len(valid),
                                  "train_documents": len(train_docs), "valid_documents": len(valid_docs),
                                  "train_characters": sum(len(d) for d in train_docs),
                                  "epochs": epochs(cfg.token_budget, len(train), cfg.seq_len)})
    return train, valid


def prepare_shard_data(cfg, run_dir: Path):
    """(tokenizer, train sequences, validation array) of a run whose ``data.source`` is a token-shard
    directory (``sparsinglaw data``): training sequences are read from the memory-mapped shards on demand,
    the validation ones (``data.validation_tokens``) from its validation shards. ``RUN_DIR/data/meta.json``
    records which shards the run reads, so a shard directory rewritten under a run is refused."""
    from dataclasses import replace

    from sparsinglaw.data.shard_writer import tokenizer_sha256
    from sparsinglaw.data.shards import TokenShards
    from sparsinglaw.train.tokenizer import load_tokenizer, prepare_tokenizer

    shards = TokenShards(cfg.data.source)
    if cfg.tokenizer.path and tokenizer_sha256(load_tokenizer(cfg.tokenizer.path)) != shards.tokenizer_sha256:
        raise DataError(f"tokenizer.path={cfg.tokenizer.path!r} is not the tokenizer of the shards in "
                        f"{shards.directory}; leave tokenizer.path unset (the shards bring theirs)")
    tokenizer = prepare_tokenizer(replace(cfg.tokenizer, path=str(shards.tokenizer_dir)), run_dir, [])
    meta_path = run_dir / "data" / "meta.json"
    old = read_data_meta(run_dir)
    if tokenizer_sha256(tokenizer) != shards.tokenizer_sha256 or old.get("shards_identity", shards.identity) != shards.identity:
        raise DataError(f"the shards in {shards.directory} changed since the run in {run_dir} started; "
                        "give the run its original shards or start a new run_dir")
    train = shards.train_sequences(cfg.seq_len)
    if len(train) == 0:
        raise DataError(f"the shards in {shards.directory} hold fewer training tokens than one sequence "
                        f"(seq_len {cfg.seq_len})")
    valid = shards.validation_sequences(cfg.seq_len, cfg.data.validation_tokens)
    if cfg.data.validation_tokens >= cfg.seq_len and len(valid) == 0:
        raise DataError(f"the validation shards of {shards.directory} hold fewer tokens than one sequence of "
                        f"{cfg.seq_len}; set data.validation_tokens=0 or write the shards with a larger "
                        "--validation-fraction")
    totals = shards.manifest["totals"]
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(meta_path, {
        "shards": str(shards.directory), "shards_identity": shards.identity, "seq_len": cfg.seq_len,
        "train_sequences": len(train), "valid_sequences": len(valid), "train_documents": totals["train_documents"],
        "valid_documents": totals["valid_documents"], "epochs": epochs(cfg.token_budget, len(train), cfg.seq_len)})
    return tokenizer, train, valid


def run_validation_sequences(run_dir: str | Path) -> np.ndarray | None:
    """The validation sequences a run evaluates on: ``RUN_DIR/data/valid.npy``, or read from the token shards
    the run trains on (``RUN_DIR/data/meta.json``); None when neither is there."""
    path = Path(run_dir) / "data" / "valid.npy"
    if path.is_file():
        return np.load(path)
    meta = read_data_meta(run_dir)
    if not meta.get("shards"):
        return None
    from sparsinglaw.data.shards import TokenShards

    shards = TokenShards(meta["shards"])
    if shards.identity != meta.get("shards_identity"):
        raise DataError(f"the shards in {meta['shards']} changed since the run in {run_dir} was trained")
    return shards.validation_sequences(meta["seq_len"], meta["valid_sequences"] * meta["seq_len"])


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

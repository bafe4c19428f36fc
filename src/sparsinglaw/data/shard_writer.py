"""Write token shards (``data.shards``) from a streamed corpus: constant memory, resumable, deterministic.

Documents stream in, are tokenized in batches and appended to the current shard, which is committed (files
renamed into place, then the manifest rewritten atomically) once its training side holds ``shard_tokens``
tokens. A rerun skips the documents the committed shards hold; boundaries depend only on the stream and
the settings, so a killed and rerun job gives byte-identical shards. A training run on a corpus that is not
shards writes its own through the same loop, with token limits on each side (the training limit checked
every ``LIMIT_CHECK_DOCUMENTS`` documents, as the older ``.npy`` cache did, so it reads the same sequences)."""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sparsinglaw.data.corpus import is_validation_document
from sparsinglaw.data.shards import FORMAT, MANIFEST, TOKENIZER_DIR, VERSION, read_manifest, token_dtype
from sparsinglaw.data.sources import iter_documents, local_files, source_bytes
from sparsinglaw.data.tokenizer import _save_atomically, load_tokenizer, train_bpe
from sparsinglaw.errors import DataError
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.progress import progress_bar

log = logging.getLogger("sparsinglaw")

# The training-side limit is checked after every 256th training document: the earlier cache tokenized the
# training documents 256 at a time and stopped after the chunk that reached the budget.
LIMIT_CHECK_DOCUMENTS = 256


@dataclass
class ShardSettings:
    """What decides the shards' bytes (recorded in the manifest; a rerun must match it)."""

    source: str
    text_field: str = "text"
    split: str = "train"
    via_datasets: bool = False
    validation_fraction: float = 0.05
    shard_tokens: int = 2**25  # training tokens per shard (64 MiB at uint16)
    batch_documents: int = 512  # documents tokenized per call
    batch_chars: int = 4_000_000  # ... or fewer, once they hold this many characters
    tokenizer: str = ""  # the given tokenizer's path, or "bpe:VOCAB:MAX_TRAIN_CHARS" (set by write_shards)
    train_token_limit: int | None = None  # a run's shards: stop the training side here (see LIMIT_CHECK_DOCUMENTS)
    valid_token_limit: int | None = None  # ... and the validation side here (at least one document)

    def check(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise DataError(f"--validation-fraction={self.validation_fraction} must be in (0, 1)")
        if self.shard_tokens < 1 or self.batch_documents < 1 or self.batch_chars < 1:
            raise DataError("--shard-tokens must be >= 1")


def tokenizer_sha256(tokenizer) -> str:
    """sha256 of the tokenizer's canonical JSON (vocabulary, merges, normalizer, special tokens)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()


def canonical_source(source: str, via_datasets: bool) -> str:
    """A local path made absolute (the same files however spelled), a datasets name as given."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() and not via_datasets else source


def write_shards(settings: ShardSettings, out_dir: str | Path, *, tokenizer_path: str | None = None,
                 vocab_size: int = 8192, max_train_chars: int = 50_000_000, progress: bool = True,
                 documents=None) -> dict:
    """Tokenize ``settings.source`` into shards in ``out_dir`` (resuming unfinished ones); returns the manifest.
    ``documents``: a callable ``documents(on_bytes)`` giving the documents in their fixed order, instead of
    reading ``settings.source`` (a training run's corpus, already read by ``data.load_documents``)."""
    settings.check()
    settings.source = canonical_source(settings.source, settings.via_datasets)
    settings.tokenizer = (str(Path(tokenizer_path).expanduser().resolve()) if tokenizer_path
                          else f"bpe:{vocab_size}:{max_train_chars}")
    out = Path(out_dir).expanduser()
    documents = documents or functools.partial(_documents, settings)
    if next(documents(None), None) is None:  # opens the source before anything is written
        raise DataError(f"{settings.source} holds no text; give a source with at least one non-empty document")
    manifest = _start_manifest(out, settings)
    tokenizer = _shard_tokenizer(out, settings, tokenizer_path, vocab_size, max_train_chars, documents)
    if manifest.get("complete"):
        log.info("%s already holds the finished shards of %s", out, settings.source)
        return manifest
    _record_tokenizer(out, manifest, tokenizer)
    _ShardLoop(out, manifest, settings, tokenizer).run(progress, documents)
    return manifest


def shards_from_tokens(settings: ShardSettings, out_dir: Path, tokenizer_path: str, train, valid,
                       documents: tuple[int, int]) -> dict:
    """Shards holding the given token streams in one shard (a run's ``.npy`` cache from before shards is
    converted this way, not tokenized again); ``documents``: (training, validation) documents they hold."""
    settings.tokenizer = str(Path(tokenizer_path).resolve())
    manifest = _start_manifest(out_dir, settings)
    tokenizer = _shard_tokenizer(out_dir, settings, tokenizer_path, 0, 0, None)
    _record_tokenizer(out_dir, manifest, tokenizer)
    loop = _ShardLoop(out_dir, manifest, settings, tokenizer)
    for side, tokens, count in (("train", train, documents[0]), ("valid", valid, documents[1])):
        loop.buffers[side].append(np.asarray(tokens).ravel().astype(loop.dtype))
        loop.counts.update({f"{side}_tokens": loop.buffers[side][0].size, f"{side}_documents": count})
    loop._commit(sum(documents))
    loop._finish(0.0)
    return manifest


def _record_tokenizer(out: Path, manifest: dict, tokenizer) -> None:
    """Record the tokenizer (hash, vocabulary, EOS, token dtype) in the manifest; another one is refused."""
    digest = tokenizer_sha256(tokenizer)
    if manifest["settings"].get("tokenizer_sha256", digest) != digest:
        raise DataError(f"{out} holds shards of another tokenizer; give the same --tokenizer or an empty -o DIR")
    manifest["settings"].update(tokenizer_sha256=digest, vocab_size=len(tokenizer), eos_id=tokenizer.eos_token_id,
                                dtype=token_dtype(len(tokenizer)))
    atomic_write_json(out / MANIFEST, manifest)


def _start_manifest(out: Path, settings: ShardSettings) -> dict:
    """The manifest to continue: the existing one when its settings match, a new one in an empty directory."""
    if (out / MANIFEST).is_file():
        manifest = read_manifest(out)
        recorded = {k: manifest["settings"].get(k) for k in asdict(settings)}
        if recorded != asdict(settings):
            changed = ", ".join(k for k in recorded if recorded[k] != asdict(settings)[k])
            raise DataError(f"{out} holds shards written with other settings ({changed}); use another -o DIR")
        return manifest
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not a token-shard directory; give a new or empty -o DIR")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "version": VERSION, "complete": False, "settings": asdict(settings),
                "tokenizer": TOKENIZER_DIR, "shards": []}
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _shard_tokenizer(out: Path, settings: ShardSettings, path: str | None, vocab_size: int, max_chars: int,
                     documents):
    """The directory's tokenizer: the one saved there, else ``path``, else a BPE trained on a sample."""
    saved = out / TOKENIZER_DIR
    if (saved / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(saved)
        if path and tokenizer_sha256(load_tokenizer(path)) != tokenizer_sha256(tokenizer):
            raise DataError(f"{out} holds shards of another tokenizer than {path}; use another -o DIR")
        return tokenizer
    if path:
        tokenizer = load_tokenizer(path)
        if not tokenizer.is_fast:
            raise DataError(f"--tokenizer {path} has no fast (Rust) tokenizer; shards need one for batch encoding")
    else:
        log.info("training a byte-level BPE tokenizer (vocabulary %d) on up to %d characters", vocab_size, max_chars)
        sample = (doc for doc in documents(None) if not is_validation_document(doc, settings.validation_fraction))
        tokenizer = train_bpe(sample, vocab_size, max_chars=max_chars)
    _save_atomically(tokenizer, saved)
    return load_tokenizer(saved)


def _documents(settings: ShardSettings, on_bytes=None):
    return iter_documents(settings.source, text_field=settings.text_field, split=settings.split,
                          via_datasets=settings.via_datasets, on_bytes=on_bytes)


class _ShardLoop:
    """Tokenize batches into the current shard's buffers; commit a shard whenever it is full."""

    def __init__(self, out: Path, manifest: dict, settings: ShardSettings, tokenizer):
        self.out, self.manifest, self.settings, self.tokenizer = out, manifest, settings, tokenizer
        self.dtype = np.dtype(manifest["settings"]["dtype"]).newbyteorder("<")
        self.eos = tokenizer.eos_token_id
        self._reset()
        self.limits = {"train": settings.train_token_limit, "valid": settings.valid_token_limit}
        self.full = {side: self._reached(side) for side in ("train", "valid")}  # after the committed shards

    def _reset(self) -> None:
        self.buffers: dict[str, list[np.ndarray]] = {"train": [], "valid": []}
        self.counts = {"train_tokens": 0, "train_documents": 0, "valid_tokens": 0, "valid_documents": 0}

    def _total(self, key: str) -> int:
        """``key`` over the committed shards and the current buffers."""
        return sum(e[key] for e in self.manifest["shards"]) + self.counts[key]

    def _reached(self, side: str, tokens: int | None = None, documents: int | None = None) -> bool:
        """Whether ``side`` holding ``tokens`` in ``documents`` (default: what it holds) has reached its limit
        (none: never); the training side only at every ``LIMIT_CHECK_DOCUMENTS``-th document, the validation
        side once it holds at least one document."""
        limit = self.limits[side]
        tokens = self._total(f"{side}_tokens") if tokens is None else tokens
        documents = self._total(f"{side}_documents") if documents is None else documents
        if limit is None or documents == 0 or tokens < limit:
            return False
        return side == "valid" or documents % LIMIT_CHECK_DOCUMENTS == 0

    def _within_limit(self, side: str, ids: list[list[int]]) -> list[list[int]]:
        """The documents of ``ids`` up to the one at which ``side`` reaches its limit (marked full then)."""
        tokens, documents = self._total(f"{side}_tokens"), self._total(f"{side}_documents")
        for n, doc in enumerate(ids, 1):
            tokens += len(doc) + 1
            if self._reached(side, tokens, documents + n):
                self.full[side] = True
                return ids[:n]
        return ids

    def run(self, progress: bool, documents) -> None:
        done = self.manifest["shards"][-1]["documents_end"] if self.manifest["shards"] else 0
        total = source_bytes(self.settings.source, self.settings.via_datasets) if progress else None
        unit = "B" if total is not None else "doc"
        started = time.perf_counter()
        with progress_bar(total, "shards", unit, enabled=progress, unit_scale=True, leave=True) as bar:
            counter = _Batched(bar.update) if total is not None else None
            docs = documents(counter)
            consumed = done
            for _ in itertools.islice(docs, done):  # what the committed shards hold: read, not tokenized
                pass
            for batch in self._batches(docs):
                self._add(batch)
                consumed += len(batch)
                if total is None:
                    bar.update(len(batch))
                if self.counts["train_tokens"] >= self.settings.shard_tokens:
                    self._commit(consumed)
                if all(self.full.values()):  # both limits reached: the rest of the source is not read
                    break
            if any(self.counts.values()) or not self.manifest["shards"]:
                self._commit(consumed)
            if counter is not None:
                counter.flush()
        self._finish(time.perf_counter() - started)

    def _batches(self, docs):
        batch, chars = [], 0
        for doc in docs:
            batch.append(doc)
            chars += len(doc)
            if len(batch) >= self.settings.batch_documents or chars >= self.settings.batch_chars:
                yield batch
                batch, chars = [], 0
        if batch:
            yield batch

    def _add(self, batch: list[str]) -> None:
        fraction = self.settings.validation_fraction
        sides = {"train": [], "valid": []}
        for doc in batch:
            sides["valid" if is_validation_document(doc, fraction) else "train"].append(doc)
        for side, docs in sides.items():
            if not docs or self.full[side]:
                continue
            ids = self.tokenizer(docs, add_special_tokens=False)["input_ids"]
            if self.limits[side] is not None:
                ids = self._within_limit(side, ids)
            count = sum(len(x) for x in ids) + len(ids)
            flat = itertools.chain.from_iterable(itertools.chain(x, (self.eos,)) for x in ids)
            self.buffers[side].append(np.fromiter(flat, dtype=self.dtype, count=count))
            self.counts[f"{side}_tokens"] += count
            self.counts[f"{side}_documents"] += len(ids)

    def _commit(self, documents_end: int) -> None:
        index = len(self.manifest["shards"])
        entry = {"index": index, **self.counts, "documents_end": documents_end}
        for side in ("train", "valid"):
            name = f"{side}-{index:05d}.bin"
            _write_atomically(self.out / name, self.buffers[side])
            entry[side] = name
        self.manifest["shards"].append(entry)
        atomic_write_json(self.out / MANIFEST, self.manifest)  # last: the shard counts once this is written
        self._reset()

    def _finish(self, seconds: float) -> None:
        shards = self.manifest["shards"]
        totals = {key: sum(e[key] for e in shards) for key in self.counts}
        totals["documents"] = totals["train_documents"] + totals["valid_documents"]
        if not totals["train_tokens"] or not totals["valid_tokens"]:
            raise DataError(f"{self.settings.source} gives {totals['documents']} documents, too few for both a "
                            "training and a validation side; use more text or a larger --validation-fraction")
        totals["bytes"] = (totals["train_tokens"] + totals["valid_tokens"]) * self.dtype.itemsize
        self.manifest.update(complete=True, totals=totals)
        atomic_write_json(self.out / MANIFEST, self.manifest)
        log.info("%d shards, %s training and %s validation tokens in %s (%.0f s)", len(shards),
                 f"{totals['train_tokens']:,}", f"{totals['valid_tokens']:,}", self.out, seconds)


class _Batched:
    """Pass byte counts to ``update`` a megabyte at a time (the readers report every line)."""

    def __init__(self, update, every: int = 2**20):
        self.update, self.every, self.pending = update, every, 0

    def __call__(self, n: int) -> None:
        self.pending += n
        if self.pending >= self.every:
            self.flush()

    def flush(self) -> None:
        self.update(self.pending)
        self.pending = 0


def _write_atomically(path: Path, parts: list[np.ndarray]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        for part in parts:
            handle.write(part.tobytes())
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


__all__ = ["ShardSettings", "canonical_source", "local_files", "tokenizer_sha256", "write_shards"]

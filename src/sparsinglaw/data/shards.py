"""Memory-mapped token shards: a corpus tokenized once, read by sequence without loading it.

A shard directory (``sparsinglaw data``, ``data.shard_writer``) holds ``manifest.json`` (settings, one entry
per committed shard, totals), ``tokenizer/``, and ``train-NNNNN.bin`` / ``valid-NNNNN.bin``: raw token ids
(uint16 when the vocabulary fits, else uint32), each document followed by EOS, split by
``data.document_split``. The training side is one stream cut into ``seq_len`` sequences, as
``train.data.pack`` does (nanoGPT's and OLMo's ``.bin`` layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sparsinglaw.errors import DataError

FORMAT = "sparsinglaw-token-shards"
VERSION = 1
MANIFEST = "manifest.json"
TOKENIZER_DIR = "tokenizer"


def is_shard_dir(path: str | Path | None) -> bool:
    """Whether ``path`` is a directory holding a shard manifest (finished or not)."""
    return path is not None and (Path(str(path)).expanduser() / MANIFEST).is_file()


def token_dtype(vocab_size: int) -> str:
    """uint16 when every id fits (vocabulary <= 65,536), else uint32."""
    return "uint16" if vocab_size <= 2**16 else "uint32"


def read_manifest(directory: str | Path) -> dict:
    """The manifest of ``directory``; DataError (one line) when it is missing, unreadable or foreign."""
    path = Path(directory).expanduser() / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{directory} is not a token-shard directory (no {MANIFEST}); write one with "
                        "sparsinglaw data SOURCE -o DIR") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is corrupt ({type(err).__name__}); rewrite the shards with sparsinglaw data") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path} is not a sparsinglaw token-shard manifest; write shards with sparsinglaw data")
    if manifest.get("version") != VERSION:
        raise DataError(f"{path} has shard format version {manifest.get('version')!r}, this sparsinglaw reads "
                        f"version {VERSION}; rewrite the shards with this version's sparsinglaw data")
    return manifest


class TokenShards:
    """A complete shard directory, checked on opening (manifest, every file's size); reads are lazy
    memory maps, so opening costs no memory whatever the corpus size."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser().resolve()
        self.manifest = read_manifest(self.directory)
        if not self.manifest.get("complete"):
            raise DataError(f"{self.directory} holds unfinished shards; rerun the same sparsinglaw data command "
                            "to finish them")
        self.dtype = np.dtype(self.manifest["settings"]["dtype"]).newbyteorder("<")
        self.shards = self.manifest["shards"]
        for entry in self.shards:
            for side in ("train", "valid"):
                self._check_size(entry[side], entry[f"{side}_tokens"])

    def _check_size(self, name: str, tokens: int) -> None:
        path = self.directory / name
        expected = tokens * self.dtype.itemsize
        size = path.stat().st_size if path.is_file() else None
        if size != expected:
            found = "missing" if size is None else f"{size:,} bytes"
            raise DataError(f"shard {path} is corrupt ({found}, the manifest says {expected:,}); rewrite the "
                            "shards with sparsinglaw data")

    @property
    def tokenizer_dir(self) -> Path:
        return self.directory / TOKENIZER_DIR

    @property
    def tokenizer_sha256(self) -> str:
        return self.manifest["settings"]["tokenizer_sha256"]

    @property
    def identity(self) -> str:
        """What a run records to notice the directory being rewritten under it: tokenizer and token counts."""
        totals = self.manifest["totals"]
        return f"{self.tokenizer_sha256[:16]}:{totals['train_tokens']}:{totals['valid_tokens']}"

    def nbytes(self) -> int:
        return sum((e["train_tokens"] + e["valid_tokens"]) * self.dtype.itemsize for e in self.shards)

    def train_sequences(self, seq_len: int) -> PackedSequences:
        return PackedSequences(self.directory, [e["train"] for e in self.shards],
                               [e["train_tokens"] for e in self.shards], self.dtype.str, seq_len)

    def validation_sequences(self, seq_len: int, max_tokens: int) -> np.ndarray:
        """The first ``max_tokens // seq_len`` packed validation sequences as an (n, seq_len) int64 array
        (only those tokens are read)."""
        packed = PackedSequences(self.directory, [e["valid"] for e in self.shards],
                                 [e["valid_tokens"] for e in self.shards], self.dtype.str, seq_len)
        n = min(len(packed), max_tokens // seq_len)
        return np.stack([packed[i] for i in range(n)]) if n else np.zeros((0, seq_len), dtype=np.int64)


class PackedSequences:
    """Sequence ``i`` of the stream of several token files: tokens ``[i * seq_len, (i + 1) * seq_len)``,
    read from memory maps opened on first use (and not pickled: a DataLoader worker opens its own)."""

    def __init__(self, directory: Path, names: list[str], counts: list[int], dtype: str, seq_len: int):
        self.directory, self.names, self.dtype, self.seq_len = Path(directory), list(names), dtype, seq_len
        self.starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self._maps: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.starts[-1]) // self.seq_len

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": None}

    def _map(self, k: int) -> np.ndarray:
        if self._maps is None:
            self._maps = [None] * len(self.names)
        if self._maps[k] is None:
            count = int(self.starts[k + 1] - self.starts[k])
            self._maps[k] = (np.memmap(self.directory / self.names[k], dtype=self.dtype, mode="r", shape=(count,))
                             if count else np.zeros(0, dtype=self.dtype))
        return self._maps[k]

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"sequence {i} of {len(self)}")
        begin, end = i * self.seq_len, (i + 1) * self.seq_len
        k = int(np.searchsorted(self.starts, begin, side="right")) - 1
        parts = []
        while begin < end:
            while self.starts[k + 1] <= begin:  # skip empty shards
                k += 1
            stop = min(end, int(self.starts[k + 1]))
            local = begin - int(self.starts[k])
            parts.append(self._map(k)[local : local + stop - begin])
            begin, k = stop, k + 1
        return np.concatenate(parts).astype(np.int64)

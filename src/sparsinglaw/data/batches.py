"""Tokenize documents and pack them into equal-length evaluation sequences.

Packing (documents joined by EOS, cut into ``seq_len`` chunks, the incomplete tail dropped) means no
sequence is padded, so no padding can be counted in any statistic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from sparsinglaw.errors import DataError


@dataclass
class EvalData:
    """Packed evaluation sequences: ``input_ids`` is ``(n_sequences, seq_len)`` with no padding."""

    input_ids: torch.Tensor
    source: str = "builtin"

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def n_sequences(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def n_tokens(self) -> int:
        return self.input_ids.numel()

    def batches(self, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first_sequence_index, ids)`` batches; with ``world_size > 1`` each rank gets every
        ``world_size``-th batch (sharded evaluation)."""
        if batch_size < 1:
            raise DataError(f"batch size must be >= 1, got {batch_size}")
        for number, start in enumerate(range(0, self.n_sequences, batch_size)):
            if number % world_size == rank:
                yield start, self.input_ids[start : start + batch_size]


def tokenize_documents(tokenizer, docs: list[str], max_tokens: int | None = None) -> list[int]:
    """One token stream: each document's tokens followed by EOS (when the tokenizer has one).

    Stops early once ``max_tokens`` are collected, so huge corpora are not tokenized in full.
    """
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for doc in docs:
        stream.extend(tokenizer(doc, add_special_tokens=False)["input_ids"])
        if eos is not None:
            stream.append(eos)
        if max_tokens is not None and len(stream) >= max_tokens:
            break
    return stream


def build_eval_data(
    tokenizer, docs: list[str], *, seq_len: int, max_tokens: int, source: str = "builtin"
) -> EvalData:
    """Pack ``docs`` into ``floor(min(max_tokens, available) / seq_len)`` sequences of ``seq_len``."""
    if seq_len < 2:
        raise DataError(f"--seq-len must be >= 2 (one token to predict), got {seq_len}")
    if max_tokens < seq_len:
        raise DataError(f"--max-tokens ({max_tokens}) is smaller than one sequence (--seq-len {seq_len})")
    stream = tokenize_documents(tokenizer, docs, max_tokens)
    n_sequences = min(max_tokens, len(stream)) // seq_len
    if n_sequences == 0:
        raise DataError(
            f"{source} gives only {len(stream)} tokens, fewer than one sequence of {seq_len}; "
            "use more text or a smaller --seq-len"
        )
    ids = torch.tensor(stream[: n_sequences * seq_len], dtype=torch.long).view(n_sequences, seq_len)
    return EvalData(input_ids=ids, source=source)


def as_eval_data(data, tokenizer=None, *, seq_len: int = 256, max_tokens: int = 4096) -> EvalData:
    """``EvalData`` from what a notebook has at hand: ``EvalData`` as it is; token ids as a
    ``(n_sequences, seq_len)`` tensor (or nested lists); texts (one string or a list of documents), packed
    with ``tokenizer`` into ``seq_len``-token sequences up to ``max_tokens``."""
    if isinstance(data, EvalData):
        return data
    if isinstance(data, str):
        data = [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, str) for d in data):
        if tokenizer is None:
            raise DataError("texts need a tokenizer to become evaluation sequences: pass tokenizer=...")
        return build_eval_data(tokenizer, list(data), seq_len=seq_len, max_tokens=max_tokens, source="texts")
    try:
        ids = torch.as_tensor(data, dtype=torch.long)
    except (TypeError, ValueError, RuntimeError) as err:
        raise DataError(f"cannot use {type(data).__name__} as evaluation data: pass EvalData, token ids "
                        "(n_sequences, seq_len) or texts") from err
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2 or ids.shape[1] < 2:
        raise DataError(f"token ids must be (n_sequences, seq_len >= 2), got shape {tuple(ids.shape)}")
    return EvalData(input_ids=ids, source="token ids")

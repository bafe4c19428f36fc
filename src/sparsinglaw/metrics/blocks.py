"""Blocks of tokens: the unit that PPL-p%'s noise estimate, stop rule and interval resample.

A block of BLOCK_TOKENS consecutive positions of one sequence (a shorter sequence is one block) is the
resampled unit, so one long sequence gives as many units as many short ones would. BLOCK_TOKENS is long
enough that neighbouring blocks' loss changes are nearly independent (benchmarks/loss_autocorrelation.py)."""

from __future__ import annotations

import numpy as np

BLOCK_TOKENS = 64
# The interval resamples groups of consecutive blocks of one sequence, up to this many tokens: the losses'
# changes are nearly independent from block to block, but what a token activates follows the text's topic
# over hundreds of tokens (the active-neuron count's block standard error keeps growing to 512 tokens,
# benchmarks/RESULTS.md "Slices of one long sequence"), so 64-token blocks of one document understate it.
INTERVAL_TOKENS = 256


def block_starts(seq_len: int, block: int = BLOCK_TOKENS) -> np.ndarray:
    """First position of each block of a sequence; a tail shorter than half a block joins the block before
    it (a block of one position would hold no predicted token: the last position predicts nothing)."""
    starts = np.arange(0, seq_len, block)
    if len(starts) > 1 and seq_len - starts[-1] < block / 2:
        starts = starts[:-1]
    return starts


def block_sums(per_position: np.ndarray, block: int = BLOCK_TOKENS) -> np.ndarray:
    """(n_sequences, seq_len) values summed over the blocks of ``block_starts`` of each sequence, flattened
    sequence by sequence: (n_sequences * blocks per sequence,)."""
    values = np.asarray(per_position, dtype=np.float64)
    return np.add.reduceat(values, block_starts(values.shape[1], block), axis=1).reshape(-1)


def block_tokens(n_sequences: int, seq_len: int, block: int = BLOCK_TOKENS) -> np.ndarray:
    """Predicted tokens per block (positions 0 .. seq_len - 2 predict; the last position predicts nothing)."""
    predicting = np.ones((n_sequences, seq_len))
    predicting[:, -1] = 0
    return block_sums(predicting, block)


def as_blocks(per_position, block: int = BLOCK_TOKENS) -> np.ndarray:
    """``block_sums`` of a tensor or array."""
    values = per_position.numpy() if hasattr(per_position, "numpy") else per_position
    return block_sums(values, block)


def interval_groups(n_sequences: int, seq_len: int, minimum: int, block: int = BLOCK_TOKENS,
                    longest: int = INTERVAL_TOKENS) -> np.ndarray:
    """The resampling group of each block (in ``block_sums`` order): consecutive blocks of one sequence joined
    up to ``longest`` tokens, as long as at least ``minimum`` groups remain (else shorter groups, down to one
    block each)."""
    per_sequence = len(block_starts(seq_len, block))
    size = max(1, longest // block)
    while size > 1 and n_sequences * -(-per_sequence // size) < minimum:
        size //= 2
    groups_per_sequence = -(-per_sequence // size)
    within = np.arange(per_sequence) // size
    return (np.arange(n_sequences)[:, None] * groups_per_sequence + within[None, :]).reshape(-1)


__all__ = ["BLOCK_TOKENS", "INTERVAL_TOKENS", "as_blocks", "block_starts", "block_sums", "block_tokens",
           "interval_groups"]

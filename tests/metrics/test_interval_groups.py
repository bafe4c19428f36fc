"""The interval's resampling units: consecutive 64-token blocks of one sequence joined up to 256 tokens (what a
token activates stays correlated over hundreds of tokens of one text), never across sequences, and never
fewer units than the bootstrap's minimum while a finer grouping has enough."""

from __future__ import annotations

import numpy as np

from sparsinglaw.metrics.blocks import as_blocks, block_starts, interval_groups
from sparsinglaw.metrics.pplp_trend import MIN_SEQUENCES


def test_one_long_sequence_is_cut_into_256_token_groups():
    groups = interval_groups(1, 2048, MIN_SEQUENCES)
    assert len(groups) == len(block_starts(2048)) == 32
    assert np.array_equal(groups, np.repeat(np.arange(8), 4))


def test_sequences_of_256_are_their_own_units_and_groups_never_cross_sequences():
    groups = interval_groups(16, 256, MIN_SEQUENCES)
    per_sequence = groups.reshape(16, -1)
    assert all(len(set(row)) == 1 for row in per_sequence) and len(set(groups)) == 16
    blocks = as_blocks(np.ones((16, 256)))
    assert len(blocks) == len(groups)


def test_groups_shrink_to_keep_the_minimum_of_units():
    assert len(set(interval_groups(1, 1024, MIN_SEQUENCES))) == MIN_SEQUENCES  # 16 blocks: pairs, not fours
    assert np.array_equal(interval_groups(2, 256, MIN_SEQUENCES), np.arange(8))  # 8 blocks: each its own
    assert np.array_equal(interval_groups(8, 64, MIN_SEQUENCES), np.arange(8))  # short sequences: blocks

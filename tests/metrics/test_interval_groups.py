"""The interval's resampling units: consecutive 64-token blocks of one sequence joined up to 256 tokens (what a
token activates stays correlated over hundreds of tokens of one text), never across sequences, and never
fewer units than the bootstrap's minimum while a finer grouping has enough."""

from __future__ import annotations

import numpy as np
import pytest

from sparsinglaw.metrics.blocks import as_blocks, block_starts, block_tokens, interval_groups
from sparsinglaw.metrics.pplp_intervals import setting_interval
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


def test_a_fixed_setting_resampled_in_groups_of_whole_sequences_is_the_per_sequence_interval():
    """One pass's interval (``setting_interval``) over blocks in groups (``TargetMeasurement.pass_interval``,
    tracking's calibrated input CETT) equals resampling the sequences themselves while a sequence is one
    group (up to 256 tokens): the same bootstrap draws, sums taken in another order."""
    rng = np.random.default_rng(0)
    n, seq_len = 12, 256
    dense = rng.gamma(2.0, 1.0, (n, seq_len))
    sparse = dense + rng.normal(0.01, 0.05, (n, seq_len))
    active, slots = rng.integers(0, 50, (n, seq_len)).astype(float), np.full((n, seq_len), 64.0)
    tokens = block_tokens(n, seq_len)
    grouped = setting_interval(as_blocks(dense), tokens, as_blocks(sparse), as_blocks(active), as_blocks(slots),
                               0.9, 500, 0, interval_groups(n, seq_len, MIN_SEQUENCES))
    whole = setting_interval(dense.sum(1), tokens.reshape(n, -1).sum(1), sparse.sum(1), active.sum(1),
                             slots.sum(1), 0.9, 500, 0)
    for key in ("activation_ratio", "ppl_ratio"):
        assert grouped[key] == pytest.approx(whole[key], rel=1e-12)
    assert grouped["sequences"] == whole["sequences"] == n


def test_groups_shrink_to_keep_the_minimum_of_units():
    assert len(set(interval_groups(1, 1024, MIN_SEQUENCES))) == MIN_SEQUENCES  # 16 blocks: pairs, not fours
    assert np.array_equal(interval_groups(2, 256, MIN_SEQUENCES), np.arange(8))  # 8 blocks: each its own
    assert np.array_equal(interval_groups(8, 64, MIN_SEQUENCES), np.arange(8))  # short sequences: blocks

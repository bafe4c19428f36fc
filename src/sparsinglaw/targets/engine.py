"""The measurement engine under every target: one model, its evaluation data and one target's units.

A pass runs this process's share of the batches with the target's hooks, checks they fired and
all-reduces the per-sequence losses; statistics placed from the first batch are placed on every process by
``place_from_start``, so sharded results equal one process's to float rounding. A sparse pass counts what
it kept in one ``activity.ActivityCounter`` whatever the target. PPL-p% over any target's parameter runs
the one trend search (``trend_search``) and puts one interval on its answer (``answer_interval``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sparsinglaw.activity import ActivityCounter
from sparsinglaw.data.batches import EvalData
from sparsinglaw.distributed import all_reduce, world
from sparsinglaw.engine import BatchContext, SequenceLosses, model_device, run_pass
from sparsinglaw.metrics.blocks import BLOCK_TOKENS, as_blocks, block_tokens, interval_groups
from sparsinglaw.metrics.pplp_solve import run_trend_search
from sparsinglaw.metrics.pplp_trend import MIN_SEQUENCES, TrendFit, TrendOutcome, TrendSearch, trend_interval
from sparsinglaw.progress import progress_bar
from sparsinglaw.targets.base import Calls, TargetSpec


@dataclass
class TrendAnswer:
    """A PPL-p% trend search over a target's parameter: the search, its outcome and every sparse pass (each
    holding ``losses`` and ``activity``), in order."""

    search: TrendSearch
    outcome: TrendOutcome
    passes: list[Any] = field(default_factory=list)

    @property
    def no_answer(self) -> str | None:
        """Why the search has no answer (None when it has one)."""
        return self.outcome.no_answer


class TargetMeasurement:
    """One target's units in ``model`` over ``data``: sharded passes, the dense losses, PPL ratios."""

    def __init__(self, spec: TargetSpec, model, data: EvalData, batch_size: int, units: Sequence | None = None,
                 *, progress: bool = False, bars: bool = True, **find_options):
        self.spec, self.model, self.data, self.batch_size = spec, model, data, batch_size
        self.units = list(units) if units is not None else spec.find_units(model, **find_options)
        self.progress, self.bars = progress, bars
        self.context = BatchContext()
        self.rank, self.world_size = world()
        self.passes = 0
        self.dense_losses: SequenceLosses | None = None

    def _bar(self, what: str):
        """A bar on a terminal, log lines in a log file (``progress``); none for ``bars=False``."""
        return progress_bar(self.data.n_tokens, what, "tok", enabled=self.progress and self.bars)

    def has_batches(self) -> bool:
        """Whether this process's shard holds a batch (more processes than batches leave some without)."""
        return self.rank < math.ceil(self.data.n_sequences / self.batch_size)

    def run_pass(self, hooks: Sequence[AbstractContextManager[Calls]], what: str) -> SequenceLosses:
        """One pass over this process's shard with ``hooks`` attached (each a target's ``attach`` or
        ``observe``); hooks that never fired are a ``ModelError``; losses summed over processes."""
        with ExitStack() as stack, self._bar(what) as bar:
            calls = [stack.enter_context(hook) for hook in hooks]
            losses = run_pass(self.model, self.data, self.batch_size, self.context, bar,
                              rank=self.rank, world_size=self.world_size)
        if self.has_batches():
            for count in calls:
                count.require_called()
        all_reduce(losses.nll, "sum")
        if losses.token_nll is not None:
            all_reduce(losses.token_nll, "sum")
        self.passes += 1
        return losses

    def place_from_start(self, hook: AbstractContextManager, sequences: int) -> None:
        """Run the data's first ``sequences`` with ``hook`` on processes other than the first, whose shard
        does not start there: statistics placed from the first batch then match on every process."""
        if self.rank == 0:
            return
        with torch.no_grad(), hook:
            self.model(input_ids=self.data.input_ids[:sequences].to(model_device(self.model)), use_cache=False)

    def counter(self, **options) -> ActivityCounter:
        """Empty counts of the units a sparse pass keeps, weighted by position as the target says."""
        return ActivityCounter(self.units, self.data.n_sequences, self.data.seq_len, self.context,
                               position_weights=self.spec.position_weights(self.units), **options)

    def ppl_ratio(self, evaluation) -> float:
        """PPL of a sparse pass over the dense PPL (both over all processes' sequences)."""
        return math.exp(evaluation.losses.mean_nll - self.dense_losses.mean_nll)

    def resampling_units(self) -> tuple[np.ndarray, np.ndarray]:
        """(dense NLL, predicted tokens) per block of tokens, the unit PPL-p% searches and intervals resample
        (``metrics.blocks``)."""
        return as_blocks(self.dense_losses.token_nll), block_tokens(self.data.n_sequences, self.data.seq_len)

    def trend_search(self, evaluate: Callable[[float], Any], *, p: float, tolerance: float, max_passes: int,
                     start: float, what: str, label: Callable[[float], str] | None = None) -> TrendAnswer:
        """PPL-p% by the one trend search (``metrics.pplp_solve.run_trend_search``) over c, the search's
        variable: ``evaluate(c)`` runs the sparse pass at c; every pass is kept on the answer."""
        passes: list[Any] = []

        def losses_at(c: float) -> np.ndarray:
            passes.append(evaluate(c))
            return as_blocks(passes[-1].losses.token_nll)

        search, outcome = run_trend_search(*self.resampling_units(), losses_at, p=p, tolerance=tolerance,
                                           max_passes=max_passes, start=start, what=what, label=label)
        return TrendAnswer(search, outcome, passes)

    def answer_interval(self, search: TrendSearch, fit: TrendFit, passes: Sequence[Any], level: float,
                        samples: int, seed: int) -> tuple[dict | None, str | None]:
        """(interval, why none) of a PPL-p% answer: the search's blocks of tokens resampled in groups of a
        sequence's consecutive blocks (``metrics.blocks.interval_groups``) and the trend refitted per
        resample, with each pass's kept share read at the resampled crossing; no further passes."""
        if len(search.tokens) < MIN_SEQUENCES:
            return None, (f"no interval: {len(search.tokens)} blocks of up to {BLOCK_TOKENS} tokens, fewer than "
                          f"{MIN_SEQUENCES} to resample (use more evaluation tokens)")
        if not all(e.activity.by_position for e in passes):
            return None, f"no interval: the kept units ({self.spec.unit}) are not counted per position"
        groups = interval_groups(self.data.n_sequences, self.data.seq_len, MIN_SEQUENCES)
        return trend_interval(search, fit, [as_blocks(e.activity.position_active) for e in passes],
                              [as_blocks(e.activity.position_slots) for e in passes], level, samples, seed,
                              groups), None


__all__ = ["TargetMeasurement", "TrendAnswer"]

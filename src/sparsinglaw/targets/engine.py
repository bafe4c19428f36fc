"""The measurement engine under every target: one model, its evaluation data and one target's units.

A pass runs this process's share of the batches with the target's hooks, checks they fired and
all-reduces the per-sequence losses; statistics placed from the first batch are placed on every process by
``place_from_start``, so sharded results equal one process's to float rounding. A sparse pass counts what
it kept in one ``activity.ActivityCounter`` whatever the target. PPL-p% over any target's parameter runs
the one trend search (``trend_search``) and finishes its answer in one place (``answered``, a
``metrics.evaluation.TrendAnswer``); a pass at a fixed setting is resampled the same way (``pass_interval``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import numpy as np
import torch

from sparsinglaw.capture.activity import ActivityCounter
from sparsinglaw.capture.passes import BatchContext, SequenceLosses, model_device, run_pass
from sparsinglaw.data.batches import EvalData
from sparsinglaw.distributed import all_reduce, world
from sparsinglaw.metrics.blocks import BLOCK_TOKENS, as_blocks, block_tokens, interval_groups
from sparsinglaw.metrics.evaluation import TrendAnswer
from sparsinglaw.metrics.pplp_intervals import crossing_interval, setting_interval, trend_interval
from sparsinglaw.metrics.pplp_trend import MIN_SEQUENCES, TrendOutcome, TrendSearch, run_trend_search
from sparsinglaw.progress import progress_bar
from sparsinglaw.targets.base import Calls, TargetSpec


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
                     start: float, what: str, label: Callable[[float], str] | None = None,
                     self_confirm: bool = False, interval: tuple[float, int, int] = (0.9, 1000, 0)) -> TrendAnswer:
        """PPL-p% by the one trend search (``metrics.pplp_trend.run_trend_search``) over c, the search's
        variable: ``evaluate(c)`` runs the sparse pass at c; every pass is kept on the answer, which is
        ``answered`` with ``interval`` (level, resamples, seed; level 0: none)."""
        passes: list[Any] = []

        def losses_at(c: float) -> np.ndarray:
            passes.append(evaluate(c))
            return as_blocks(passes[-1].losses.token_nll)

        search, outcome = run_trend_search(*self.resampling_units(), losses_at, p=p, tolerance=tolerance,
                                           max_passes=max_passes, start=start, what=what, label=label,
                                           self_confirm=self_confirm)
        return self.answered(search, outcome, passes, [as_blocks(e.activity.position_active) for e in passes],
                             [as_blocks(e.activity.position_slots) for e in passes], *interval)

    def answered(self, search: TrendSearch, outcome: TrendOutcome, passes: list[Any], active: list[np.ndarray],
                 slots: list[np.ndarray], level: float, samples: int, seed: int) -> TrendAnswer:
        """A finished search's answer, its interval and warnings. The interval resamples the search's blocks of
        tokens (``groups``) and refits the trend per resample, each pass's kept share (``active`` / ``slots``
        per block) read at the resampled crossing. Those are the counts placed by position: a mixture of
        experts' routed experts (and Qwen2-MoE's shared ones) see flattened tokens and have none
        (``ActivityCounter.unplaced``): its interval then has no kept share, only the setting's, and says why."""
        found = TrendAnswer(search, outcome, passes, warnings=list(outcome.warnings))
        if found.no_answer or level <= 0:
            return found
        if len(search.tokens) >= MIN_SEQUENCES:
            found.interval = trend_interval(search, outcome.fit, active, slots, level, samples, seed, self.groups())
        self._interval_warnings(found.interval, len(search.tokens), passes, found.warnings)
        return found

    def _interval_warnings(self, interval: dict | None, blocks: int, passes: list[Any], warnings: list[str]) -> None:
        """Why an answer has no interval (too few blocks of tokens), or none for its kept share: units not
        counted per position (the resampled share would miss them) have it taken out here."""
        if interval is None:
            warnings.append(f"no interval: {blocks} blocks of up to {BLOCK_TOKENS} tokens, fewer than "
                            f"{MIN_SEQUENCES} to resample (use more evaluation tokens)")
        elif not all(e.activity.by_position for e in passes):
            interval.pop("activation_ratio", None)
            warnings.append(f"no interval for the kept share: some units ({self.spec.unit}) are not counted per "
                            "position (a mixture of experts' routed experts), so blocks of tokens cannot resample "
                            "it; the setting's interval stands")

    def groups(self) -> np.ndarray:
        """Each block of tokens' group (``metrics.blocks.interval_groups``), the unit every interval resamples."""
        return interval_groups(self.data.n_sequences, self.data.seq_len, MIN_SEQUENCES)

    def pass_interval(self, evaluation, level: float, samples: int, seed: int) -> dict | None:
        """The interval of one pass's kept share and PPL ratio at a fixed setting, resampling what an answer's
        interval does (``groups``); None below MIN_SEQUENCES blocks. Without counts per position (``answered``)
        the kept share has no interval, only the PPL ratio."""
        activity = evaluation.activity
        iv = setting_interval(*self.resampling_units(), as_blocks(evaluation.losses.token_nll),
                              as_blocks(activity.position_active), as_blocks(activity.position_slots), level,
                              samples, seed, self.groups())
        if iv is not None and not activity.by_position:
            iv.pop("activation_ratio", None)
        return iv

    def crossing_interval(self, passes: list[Any], cetts: list[float], target: float, level: float, samples: int,
                          seed: int, warnings: list[str]) -> dict | None:
        """The interval of the lowest crossing of ``target`` among ``passes`` (at ``cetts``) and its kept
        share, resampling what every interval does (``groups``); ``warnings`` get why it has none, or none for
        the kept share, as an answer's (``answered``)."""
        dense, tokens = self.resampling_units()
        iv = crossing_interval(dense, tokens, [as_blocks(e.losses.token_nll) for e in passes],
                               [as_blocks(e.activity.position_active) for e in passes],
                               [as_blocks(e.activity.position_slots) for e in passes], cetts, target, level,
                               samples, seed, self.groups())
        if iv is not None and iv["censored_fraction"] >= 1.0:  # both ends would sit at a pass: not a finding
            warnings.append("no interval: in every resample the lowest crossing lies outside the passes (no two "
                            "of them bracket the target), so resampling cannot place it; solution=trend gives one")
            return None
        self._interval_warnings(iv, len(tokens), passes, warnings)
        return iv


__all__ = ["TargetMeasurement", "TrendAnswer"]

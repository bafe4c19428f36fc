"""The measurement engine under every target: one model, its evaluation data and one target's units.

A pass runs this process's share of the batches with the target's hooks, checks they fired and
all-reduces the per-sequence losses; statistics placed from the first batch are placed on every process by
``place_from_start``, so sharded results equal one process's to float rounding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack

import numpy as np
import torch

from sparsinglaw.data.batches import EvalData
from sparsinglaw.distributed import all_reduce, world
from sparsinglaw.engine import BatchContext, SequenceLosses, model_device, run_pass
from sparsinglaw.metrics.blocks import as_blocks, block_tokens
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

    def reduce(self, *tensors: torch.Tensor, op: str = "sum") -> None:
        """All-reduce counts a sparse pass kept (in place; a no-op in one process)."""
        for tensor in tensors:
            all_reduce(tensor, op)

    def ppl_ratio(self, evaluation) -> float:
        """PPL of a sparse pass over the dense PPL (both over all processes' sequences)."""
        return math.exp(evaluation.losses.mean_nll - self.dense_losses.mean_nll)

    def resampling_units(self) -> tuple[np.ndarray, np.ndarray]:
        """(dense NLL, predicted tokens) per block of tokens, the unit PPL-p% searches and intervals resample
        (``metrics.blocks``)."""
        return as_blocks(self.dense_losses.token_nll), block_tokens(self.data.n_sequences, self.data.seq_len)


__all__ = ["TargetMeasurement"]

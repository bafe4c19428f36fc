"""PPL-p% on big evaluations (issue 29, point 4): a cheap search on a subset of the sequences finds where to
look; the search on every sequence starts there.

Why. A trend search spends 3-8 sparse passes, each as costly as a dense forward: on 65,536 tokens that is
most of the cost. A search on a few thousand tokens finds the crossing to within its sampling error (a
subset's PPL ratio lies about 0.002 from the whole evaluation's at 4,096 tokens of SmolLM2's text, 0.0005 at
40,000), far better than a fixed start, at a sixteenth of a pass each. Growing the subset until that error
met half the tolerance (the earlier design) completed every earlier pass on the new sequences and on real
text grew to all of them, so it cost what the search on all tokens did (benchmarks/RESULTS.md).

How.
1. Subset: START_TOKENS of sequences drawn at random (``MeasureConfig.seed``), at least MIN_SUBSET_SEQUENCES.
   The trend search runs on their blocks of tokens (``metrics.blocks``) with its own stop rule; its answer
   and slope are a start, nothing more.
2. All: the trend search on every sequence's blocks starts at the subset's answer, with the subset's slope as
   its prior (``TrendSearch.prior``; the sd allows the whole evaluation's slope to differ), and every pass on
   every sequence. No subset pass is completed on the other sequences: the passes on all of them are the
   1-3 near the answer. The answer, its convergence (stop rule and confirmation), its PPL ratio and its
   interval are this search's, exactly as on a small evaluation.

The cost then grows with the tokens only through the few passes near the answer (and the dense statistics
pass), plus a fixed START_TOKENS per subset pass.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from sparsinglaw.data.batches import EvalData
from sparsinglaw.metrics.blocks import as_blocks, block_tokens
from sparsinglaw.metrics.pplp import C_MAX, C_MIN
from sparsinglaw.metrics.pplp_trend import PRIOR, PRIOR_NOISE, TrendOutcome, TrendSearch, run_trend_search

if TYPE_CHECKING:
    from sparsinglaw.metrics.evaluation import Evaluation
    from sparsinglaw.metrics.evaluation import MeasurementView as Measurement

BIG_TOKENS = 16_384  # evaluations this large (and with 2 * MIN_SUBSET_SEQUENCES sequences) search on subsets
START_TOKENS = 4_096  # where the trend search converges on SmolLM2 (issue 29, point 3)
MIN_SUBSET_SEQUENCES = 16  # the sampling error is estimated across the subset's sequences
SAMPLING_SHARE = 0.5  # the first subset is at least as large as makes the prior noise this share of the tolerance
SLOPE_SD = (1.0, 0.5)  # the search on all sequences takes the subset's slope s with sd max(1, s / 2) as its prior
log = logging.getLogger("sparsinglaw")


def use_subsets(n_sequences: int, seq_len: int) -> bool:
    """Whether an evaluation is big enough for the subset search."""
    return n_sequences * seq_len >= BIG_TOKENS and n_sequences >= 2 * MIN_SUBSET_SEQUENCES


def start_rows(n_sequences: int, seq_len: int, target: float, tol: float) -> int:
    """Sequences in the first subset: START_TOKENS, or the tokens at which the prior noise is SAMPLING_SHARE of
    the tolerance if that is more; at least MIN_SUBSET_SEQUENCES, at most all."""
    tokens = max(START_TOKENS, (PRIOR_NOISE * target / (SAMPLING_SHARE * tol)) ** 2)
    return min(n_sequences, max(MIN_SUBSET_SEQUENCES, math.ceil(tokens / seq_len)))


def sampling_se(dense: np.ndarray, sparse: np.ndarray, n_all: int, target: float) -> float:
    """Standard error, in PPL-ratio units, of the subset's ratio as an estimate of all ``n_all`` sequences'
    ratio at the same CETT: per-sequence summed loss changes (rows of equal length), sampled without
    replacement (Cochran eq. 6.9; equal sizes make the ratio estimator a mean)."""
    change = (sparse - dense).sum(axis=1)
    m = len(change)
    if m < 2 or m >= n_all:
        return 0.0
    tokens = dense.shape[1] - 1
    return target * math.sqrt((1 - m / n_all) * float(np.var(change / tokens, ddof=1)) / m)


@dataclass
class RowPasses:
    """The sparse passes so far, each on the first rows of ``order`` (a random order of the sequences):
    per-position losses, active neurons and neuron slots, rows in that order."""

    order: np.ndarray
    cetts: list[float] = field(default_factory=list)
    nll: list[np.ndarray] = field(default_factory=list)
    active: list[np.ndarray] = field(default_factory=list)
    slots: list[np.ndarray] = field(default_factory=list)
    token_passes: int = 0  # tokens evaluated in sparse passes, in all

    def add(self, c: float, evaluation: Evaluation, rows: slice | np.ndarray) -> None:
        """Append ``evaluation``'s rows (of ``order[rows]``) to the pass at c, new or not."""
        arrays = [evaluation.losses.token_nll.numpy(), evaluation.activity.position_active.numpy(),
                  evaluation.activity.position_slots.numpy()]
        self.token_passes += arrays[0].size
        every = isinstance(rows, np.ndarray)
        if every:  # a pass on every sequence, in data order: put it in ``order``
            arrays = [a[rows] for a in arrays]
        if c not in self.cetts:
            self.cetts.append(c)
            self.nll.append(arrays[0])
            self.active.append(arrays[1])
            self.slots.append(arrays[2])
            return
        k = self.cetts.index(c)
        if every:  # the same CETT again, now on every sequence: it replaces the rows there were
            self.nll[k], self.active[k], self.slots[k] = arrays
            return
        self.nll[k], self.active[k], self.slots[k] = (np.concatenate([old[k], new]) for old, new in
                                                      zip((self.nll, self.active, self.slots), arrays))

    def ratio(self, c: float, dense: np.ndarray, rows: int | None = None) -> float:
        """PPL ratio of the pass at c on its first ``rows`` sequences (all it has by default); ``dense`` is
        the dense pass's per-position losses in ``order``."""
        nll = self.nll[self.cetts.index(c)]
        nll = nll if rows is None else nll[:rows]
        n_rows = len(nll)
        return math.exp(float(nll.sum() - dense[:n_rows].sum()) / (n_rows * (dense.shape[1] - 1)))


@dataclass
class SubsetOutcome:
    """What the subset search leaves: the search on every sequence and its outcome, every pass (subset and
    all), the passes on every sequence, and the facts for the result (``subset``)."""

    search: TrendSearch
    outcome: TrendOutcome
    passes: RowPasses
    dense: np.ndarray  # the dense pass's per-position losses, rows in ``passes.order``
    rows: int
    full: list = field(default_factory=list)  # Evaluation of every pass on all sequences
    subset: dict = field(default_factory=dict)

    def block_activity(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The final search's passes' active and slot counts per block (for its interval)."""
        k = [self.passes.cetts.index(c) for c in self.search.cetts]
        return [as_blocks(self.passes.active[i]) for i in k], [as_blocks(self.passes.slots[i]) for i in k]


class SubsetSearch:
    """The trend search of ``metrics.pplp_trend`` on a subset of ``measurement``'s sequences, then on all of
    them from the subset's answer."""

    def __init__(self, measurement: Measurement):
        cfg, data = measurement.config, measurement.data
        self.measurement, self.config = measurement, cfg
        self.n, self.seq_len = data.n_sequences, data.seq_len
        self.target = 1 + cfg.p / 100
        order = np.random.default_rng(cfg.seed).permutation(self.n)
        self.dense = measurement.dense_losses.token_nll.numpy()[order]
        self.passes = RowPasses(order)
        self.full: list[Evaluation] = []

    def _evaluate(self, c: float, rows: int) -> np.ndarray:
        """A sparse pass at c on the first ``rows`` sequences of the order (all of them: the data as it is);
        its losses per block, rows in the order."""
        measurement = self.measurement
        if rows == self.n:
            evaluation = measurement.at("cett", c)
            self.full.append(evaluation)
            self.passes.add(c, evaluation, self.passes.order)
        else:
            everything = measurement.data
            measurement.data = EvalData(everything.input_ids[torch.as_tensor(self.passes.order[:rows])],
                                        source=everything.source)
            try:
                evaluation = measurement.at("cett", c)
            finally:
                measurement.data = everything
            self.passes.add(c, evaluation, slice(0, rows))
        return as_blocks(self.passes.nll[self.passes.cetts.index(c)][:rows])

    def _search(self, rows: int, start: float, prior=PRIOR) -> tuple[TrendSearch, TrendOutcome]:
        """The trend search on the first ``rows`` sequences' blocks, every pass its own."""
        cfg = self.config
        return run_trend_search(as_blocks(self.dense[:rows]), block_tokens(rows, self.seq_len),
                                lambda c: self._evaluate(c, rows), p=cfg.p, tolerance=cfg.tolerance,
                                max_passes=cfg.max_sparse_passes, start=start, what="PPL-p% search", prior=prior,
                                self_confirm=True)

    def run(self) -> SubsetOutcome:
        m = start_rows(self.n, self.seq_len, self.target, self.config.tolerance)
        first, found = self._search(m, self.config.start_cett)
        if m == self.n or found.no_answer:
            return self._done(first, found, m, [])
        c = float(np.clip(found.answer, C_MIN, C_MAX))  # an unconverged fit may cross outside
        k = int(np.argmin(np.abs(np.log(self.passes.cetts) - math.log(c))))
        se = sampling_se(self.dense[:m], self.passes.nll[k][:m], self.n, self.target)
        slope = found.fit.slope
        step = {"sequences": m, "cett": c, "sampling_se": se, "passes": len(first.cetts),
                "converged": found.converged, "slope": slope}
        log.info("PPL-p%% search on %d of %d sequences: CETT %.4g (sampling error %.2g); now on all of them from "
                 "there", m, self.n, c, se)
        search, outcome = self._search(self.n, c, (slope, max(SLOPE_SD[0], SLOPE_SD[1] * slope)))
        return self._done(search, outcome, self.n, [step])

    def _done(self, search: TrendSearch, outcome: TrendOutcome, m: int, history: list[dict]) -> SubsetOutcome:
        subset = {"sequences": history[0]["sequences"] if history else m, "of": self.n, "steps": history,
                  "passes_on_all": len(self.full),
                  "sparse_pass_equivalents": self.passes.token_passes / (self.n * self.seq_len)}
        return SubsetOutcome(search, outcome, self.passes, self.dense, m, list(self.full), subset)


__all__ = ["BIG_TOKENS", "SubsetOutcome", "SubsetSearch", "sampling_se", "start_rows", "use_subsets"]

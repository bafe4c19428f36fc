"""PPL-p% on big evaluations (issue 29, point 4): sparse passes on a subset of the sequences, one pass on all.

Why. A trend search spends 5-8 sparse passes near the answer. On 65,536 tokens each pass costs as much as a
dense forward, yet the trend's standard error on a few thousand tokens already meets the tolerance
(``metrics.pplp_trend``: SmolLM2, one 4,096-token sequence, standard error 0.00046). What more tokens add is a
smaller *sampling* error: how far the subset's PPL ratio at a CETT lies from the whole evaluation's. So the
search runs on a random subset of the sequences and a single pass on all of them checks the answer.

How.
1. Start: START_TOKENS of sequences drawn at random (``MeasureConfig.seed``), at least MIN_SUBSET_SEQUENCES
   and enough that the prior noise (``pplp_trend.PRIOR_NOISE``) is at most SAMPLING_SHARE of the tolerance.
   The trend search runs on their blocks of tokens (``metrics.blocks``) with its own stop rule.
2. Grow: once it converges, the subset's sampling error at the answer is estimated from its sequences (a
   ratio estimator under sampling without replacement, Cochran, *Sampling Techniques*, 3rd ed., eq. 6.9, with
   the finite-population factor 1 - m/n). While it exceeds SAMPLING_SHARE of the tolerance the subset grows
   to the size that error says is needed (at least doubling); the passes made so far are completed on the
   new sequences only, and the search goes on from them (``TrendSearch.run`` resumes).
3. Confirm: one pass on every sequence at the answer. Converged only when it reads the target within the
   tolerance. If not, its difference from the subset's ratio at the same CETT is a measured sampling error:
   the subset grows by it, and the pass on all sequences joins the search (its rows cost nothing more).

When the subset grows to every sequence the search is the plain one (every pass on all tokens). The
interval is the bootstrap over the final subset's blocks: the sampling error of m sequences, wider than the
whole evaluation's (a conservative interval, said so in the result).
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
from sparsinglaw.metrics.pplp_trend import PRIOR_NOISE, TrendOutcome, TrendSearch

if TYPE_CHECKING:
    from sparsinglaw.metrics.evaluation import Evaluation
    from sparsinglaw.metrics.evaluation import MeasurementView as Measurement

BIG_TOKENS = 16_384  # evaluations this large (and with 2 * MIN_SUBSET_SEQUENCES sequences) search on subsets
START_TOKENS = 4_096  # where the trend search converges on SmolLM2 (issue 29, point 3)
MIN_SUBSET_SEQUENCES = 16  # the sampling error is estimated across the subset's sequences
SAMPLING_SHARE = 0.5  # the subset's sampling error may be this share of the tolerance
ALL_SHARE = 0.75  # a subset this large of all sequences is replaced by all of them
MAX_FULL_PASSES = 3
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


def rows_needed(m: int, n_all: int, se: float, share_tol: float) -> int:
    """Sequences at which a sampling error ``se`` on m of n_all shrinks to ``share_tol``: (1/m' - 1/n) s^2 =
    share_tol^2 with s^2 = se^2 / (1/m - 1/n). At least double m; all of them once past ALL_SHARE."""
    per_sequence_var = se**2 / max(1 / m - 1 / n_all, 1e-12)
    needed = 1 / (share_tol**2 / max(per_sequence_var, 1e-30) + 1 / n_all)
    grown = max(2 * m, math.ceil(needed))
    return n_all if grown >= ALL_SHARE * n_all else grown


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
    """What the subset search leaves: the final search and its outcome, the passes on every sequence, and
    the facts for the result (``subset``)."""

    search: TrendSearch
    outcome: TrendOutcome
    passes: RowPasses
    dense: np.ndarray  # the dense pass's per-position losses, rows in ``passes.order``
    rows: int
    full: list = field(default_factory=list)  # Evaluation of every pass on all sequences
    subset: dict = field(default_factory=dict)

    def block_activity(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The final search's passes' active and slot counts per block (for its interval)."""
        m = self.rows
        return [as_blocks(a[:m]) for a in self.passes.active], [as_blocks(s[:m]) for s in self.passes.slots]


class SubsetSearch:
    """The trend search of ``metrics.pplp_trend`` on growing subsets of ``measurement``'s sequences."""

    def __init__(self, measurement: Measurement, on_pass=None):
        cfg, data = measurement.config, measurement.data
        self.measurement, self.on_pass, self.config = measurement, on_pass, cfg
        self.n, self.seq_len = data.n_sequences, data.seq_len
        self.target = 1 + cfg.p / 100
        order = np.random.default_rng(cfg.seed).permutation(self.n)
        self.dense = measurement.dense_losses.token_nll.numpy()[order]
        self.passes = RowPasses(order)
        self.full: list[Evaluation] = []

    def _evaluate(self, c: float, start: int, stop: int) -> None:
        """A sparse pass at c on the sequences order[start:stop] (all of them: the data as it is)."""
        measurement = self.measurement
        if start == 0 and stop == self.n:
            evaluation = measurement.at("cett", c)
            self.full.append(evaluation)
            self.passes.add(c, evaluation, self.passes.order)
            return
        everything = measurement.data
        rows = torch.as_tensor(self.passes.order[start:stop])
        measurement.data = EvalData(everything.input_ids[rows], source=everything.source)
        try:
            evaluation = measurement.at("cett", c)
        finally:
            measurement.data = everything
        self.passes.add(c, evaluation, slice(start, stop))

    def _complete(self, m: int) -> None:
        """Every pass so far extended to the first m sequences (each new sequence evaluated once per CETT)."""
        for k, c in enumerate(list(self.passes.cetts)):
            have = len(self.passes.nll[k])
            if have < m:
                self._evaluate(c, have, m)

    def _search(self, m: int) -> tuple[TrendSearch, TrendOutcome]:
        """The trend search on the first m sequences' blocks, going on from the passes so far."""
        cfg = self.config
        search = TrendSearch(as_blocks(self.dense[:m]), block_tokens(m, self.seq_len), cfg.p, cfg.tolerance,
                             cfg.max_sparse_passes + len(self.full), cfg.start_cett)
        search.cetts = list(self.passes.cetts)
        search.sparse_nll = [as_blocks(nll[:m]) for nll in self.passes.nll]

        def evaluate(c: float) -> np.ndarray:
            self._evaluate(c, 0, m)
            return as_blocks(self.passes.nll[-1][:m])

        return search, search.run(evaluate, on_pass=self.on_pass)

    def _subset_se(self, c: float, m: int) -> float:
        """The sampling error at the pass nearest c, over the first m sequences."""
        k = int(np.argmin(np.abs(np.log(self.passes.cetts) - math.log(c))))
        return sampling_se(self.dense[:m], self.passes.nll[k][:m], self.n, self.target)

    def run(self) -> SubsetOutcome:
        tol = self.config.tolerance
        m = start_rows(self.n, self.seq_len, self.target, tol)
        history: list[dict] = []
        while True:
            self._complete(m)
            search, outcome = self._search(m)
            if m == self.n or outcome.no_answer:
                return self._done(search, outcome, m, history)
            c = float(np.clip(outcome.fit.cett, C_MIN, C_MAX))  # an unconverged fit may cross outside
            se = self._subset_se(c, m)
            step = {"sequences": m, "cett": c, "sampling_se": se}
            history.append(step)
            if outcome.converged and se > SAMPLING_SHARE * tol:
                m = self._grow(m, rows_needed(m, self.n, se, SAMPLING_SHARE * tol), "its sampling error", se)
                continue
            self._evaluate(c, 0, self.n)  # the pass on every sequence at the answer
            full = self._full_ratio()
            step.update(all_sequences_ratio=full, subset_ratio=self._full_ratio(m))
            if not outcome.converged or abs(full - self.target) <= tol or len(self.full) >= MAX_FULL_PASSES:
                return self._done(search, outcome, m, history)
            measured = max(abs(full - step["subset_ratio"]), se)
            m = self._grow(m, rows_needed(m, self.n, measured, SAMPLING_SHARE * tol), "the pass on all of them", full)

    def _grow(self, m: int, grown: int, why: str, value: float) -> int:
        log.info("PPL-p%% search on %d of %d sequences: %s reads %.4g, growing to %d", m, self.n, why, value, grown)
        return grown

    def _full_ratio(self, rows: int | None = None) -> float:
        """PPL ratio of the last pass on every sequence, on all of them or on the first ``rows``."""
        return self.passes.ratio(float(self.full[-1].applied.setting["cett"]), self.dense, rows)

    def _done(self, search: TrendSearch, outcome: TrendOutcome, m: int, history: list[dict]) -> SubsetOutcome:
        """The outcome, with the check on every sequence deciding convergence when the subset is not all."""
        tol = self.config.tolerance
        if m < self.n and not outcome.no_answer:
            full = self._full_ratio()
            c = float(self.full[-1].applied.setting["cett"])
            check = {"setting": search.label(c), "cett": c, "ppl_ratio": full, "trend_ratio": self.target,
                     "distance": 0.0, "confirmed": abs(full - self.target) <= tol, "sequences": self.n}
            if outcome.converged and not check["confirmed"]:
                outcome.warnings.append(
                    f"not converged: the pass on all {self.n} sequences at {check['setting']} reads PPL ratio "
                    f"{full:.4f}, off the target {self.target:.4f} by more than the tolerance {tol:g} after "
                    f"{len(self.full)} such passes (the subset of {m} sequences is not yet representative)")
            outcome.converged = outcome.converged and check["confirmed"]
            outcome.confirmation = check
        subset = {"sequences": m, "of": self.n, "steps": history, "passes_on_all": len(self.full),
                  "sparse_pass_equivalents": self.passes.token_passes / (self.n * self.seq_len)}
        return SubsetOutcome(search, outcome, self.passes, self.dense, m, list(self.full), subset)


__all__ = ["BIG_TOKENS", "SubsetOutcome", "SubsetSearch", "sampling_se", "start_rows", "use_subsets"]

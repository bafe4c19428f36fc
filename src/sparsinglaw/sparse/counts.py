"""Activity counters read off sparse compute modules, shaped like the hook statistics of
``ThresholdsKind.install`` (``active`` / ``total`` per unit, ``activation_ratio``), so a sparse run reports
the same numbers as a masked one (``evaluate --sparse-compute``)."""

from __future__ import annotations

import torch


class KeptCounts:
    """Kept and seen (token, unit) pairs per unit, ``active`` and ``total``, and the kept share
    ``activation_ratio`` (the name reports use for either target): the statistics of thresholds' hooks."""

    def __init__(self, n: int):
        self.active = torch.zeros(n, dtype=torch.float64)
        self.total = torch.zeros(n, dtype=torch.float64)

    @property
    def activation_ratio(self) -> float:
        total = float(self.total.sum())
        return float(self.active.sum()) / total if total > 0 else float("nan")


class FFNModuleCounts(KeptCounts):
    """``apply_thresholds``' counters (per-FFN kept and total (token, neuron) pairs) read off sparse FFNs."""

    def __init__(self, handle):
        self.handle = handle

    @property
    def active(self) -> torch.Tensor:
        return torch.tensor([s.active for s in self.handle.stats()], dtype=torch.float64)

    @property
    def total(self) -> torch.Tensor:
        return torch.tensor([float(s.tokens * s.width) for s in self.handle.stats()], dtype=torch.float64)


class ProjectionCounts(KeptCounts):
    """Kept and offered (token, input) pairs per input-sparse projection (``sparse.input_sparse``); for
    combined thresholds only the down projections', whose inputs are the FFN neurons (kept by both rules)."""

    def __init__(self, handle, ffn_only: bool):
        self.modules = [m for name, m in handle.modules.items() if not ffn_only or name.endswith("down_proj")]

    @property
    def active(self) -> torch.Tensor:
        return torch.tensor([float(m.counters.kept_pairs) for m in self.modules], dtype=torch.float64)

    @property
    def total(self) -> torch.Tensor:
        return torch.tensor([float(m.counters.offered_pairs) for m in self.modules], dtype=torch.float64)

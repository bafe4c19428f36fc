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

    def masked(self, i: int, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x * keep``, counting unit ``i``'s kept and seen pairs (``keep``: a 0/1 mask of ``x``)."""
        self.active[i] += float(keep.sum())
        self.total[i] += keep.numel()
        return x * keep


class ModuleCounts(KeptCounts):
    """Kept and offered (token, unit) pairs per sparse compute module of a handle (``sparse.modules``), read
    live from the modules' counters; ``suffix``: only the modules whose name ends with it."""

    def __init__(self, handle, suffix: str = ""):
        self.modules = [m for name, m in handle.modules.items() if name.endswith(suffix)]

    @property
    def active(self) -> torch.Tensor:
        return torch.tensor([float(m.counters.kept_pairs) for m in self.modules], dtype=torch.float64)

    @property
    def total(self) -> torch.Tensor:
        return torch.tensor([float(m.counters.offered_pairs) for m in self.modules], dtype=torch.float64)

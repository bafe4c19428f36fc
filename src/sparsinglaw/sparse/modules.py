"""What the sparse compute modules of every target share: the counters of their calls and of the kept
(token, unit) pairs, and the handle that swaps them into a model by module name and back.

The modules differ by algorithm only: candidate neurons of an FFN (``sparse.ffn``, swapped in by
``sparse.convert``) and kept columns of one projection (``sparse.input_sparse``). Each holds its
``original`` module and its ``counters``; ``sparse.counts.ModuleCounts`` reads either kind's counters as the
statistics of thresholds' hooks."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class CallCounts:
    """One sparse module's calls per path and kept / offered (token, unit) pairs since the last reset."""

    sparse_calls: int = 0
    dense_calls: int = 0
    kept_pairs: float = 0  # kept (token, unit) pairs
    offered_pairs: float = 0  # tokens x units

    def add_call(self, sparse: bool, kept_pairs: float, offered_pairs: float) -> None:
        if sparse:
            self.sparse_calls += 1
        else:
            self.dense_calls += 1
        self.kept_pairs += kept_pairs
        self.offered_pairs += offered_pairs


def parent_of(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module holding submodule ``name`` and the attribute it is held under."""
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


@dataclass
class SwappedModules:
    """Sparse modules swapped into ``model``, by module name. ``restore()`` puts the originals back (twice is
    harmless; the modules and their counters stay readable); ``set_enabled(False)`` does the same and
    ``set_enabled(True)`` swaps the sparse modules in again (timing the plain model side by side)."""

    model: nn.Module
    modules: dict[str, nn.Module] = field(default_factory=dict)

    def swap_in(self, name: str, module: nn.Module) -> None:
        parent, leaf = parent_of(self.model, name)
        setattr(parent, leaf, module)
        self.modules[name] = module

    def set_enabled(self, enabled: bool) -> None:
        for name, module in self.modules.items():
            parent, leaf = parent_of(self.model, name)
            setattr(parent, leaf, module if enabled else module.original)

    def restore(self) -> None:
        for name, module in self.modules.items():
            parent, leaf = parent_of(self.model, name)
            if getattr(parent, leaf) is module:
                setattr(parent, leaf, module.original)

    def reset_counters(self) -> None:
        for module in self.modules.values():
            module.counters = type(module.counters)()

    def _sum(self, name: str) -> float:
        return sum(getattr(m.counters, name) for m in self.modules.values())

    def sparse_share(self) -> float:
        """Share of calls that took the sparse path (the rest fell back to dense)."""
        total = self._sum("sparse_calls") + self._sum("dense_calls")
        return self._sum("sparse_calls") / total if total else float("nan")

    def dense_share(self) -> float:
        total = self._sum("dense_calls") + self._sum("sparse_calls")
        return self._sum("dense_calls") / total if total else float("nan")


__all__ = ["CallCounts", "SwappedModules", "parent_of"]

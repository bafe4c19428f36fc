"""What the sparse compute modules of every target share: their fallback policy, the counters of their
calls and of the kept (token, unit) pairs, and the handle that swaps them into a model by module name and
back.

The modules differ by algorithm only: candidate neurons of an FFN (``sparse.ffn``, swapped in by
``sparse.convert``) and kept columns of one projection (``sparse.input_sparse``). Each holds its
``original`` module and its ``counters``; ``sparse.counts.ModuleCounts`` reads either kind's counters as the
statistics of thresholds' hooks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

from torch import nn

from sparsinglaw.errors import ConfigError


@dataclass(frozen=True)
class SparsePolicy:
    """When a sparse module takes its sparse path, the same for every kind: a call of at most ``max_tokens``
    tokens whose union of units to read (an FFN's candidate neurons, a projection's kept inputs) is at most
    ``max_share`` of its units; past either, the masked dense computation runs. None: the module kind's
    ``DEFAULT_POLICY`` (where its path stops beating dense on CPU, ``benchmarks/bench_sparse_ffn.py`` and
    ``bench_input_sparsity.py``). ``native``: the compiled CPU kernel where it applies. The sparse FFNs'
    fused ReLU kernel learns the union only while computing, so after a call above ``fused_max_share`` the
    next runs unfused; it screens the gate with a float16 copy of ``W_gate`` when ``half_screen`` (exact,
    +2 bytes per weight). The projections read neither."""

    max_tokens: int | None = None
    max_share: float | None = None
    native: bool = True
    fused_max_share: float = 0.5
    half_screen: bool = True

    def __post_init__(self):
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"max_tokens (--fallback-tokens) must be >= 1, got {self.max_tokens}")
        for name, option in (("max_share", " (--fallback-ratio)"), ("fused_max_share", "")):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}{option} must be in [0, 1], got {value}")


def resolve_policy(policy: SparsePolicy | None, module_type: type) -> SparsePolicy:
    """``policy`` with ``module_type.DEFAULT_POLICY``'s values where it has None; ``ConfigError`` above
    ``module_type.TOKEN_LIMIT`` tokens (the rows its kernel's buffers hold; None: no limit)."""
    policy, default = policy or SparsePolicy(), module_type.DEFAULT_POLICY
    policy = replace(policy, max_tokens=default.max_tokens if policy.max_tokens is None else policy.max_tokens,
                     max_share=default.max_share if policy.max_share is None else policy.max_share)
    limit = module_type.TOKEN_LIMIT
    if limit is not None and policy.max_tokens > limit:
        raise ConfigError(f"max_tokens (--fallback-tokens) must be in [1, {limit}] for {module_type.__name__} "
                          f"(its kernel's buffers hold {limit} tokens), got {policy.max_tokens}")
    return policy


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
    harmless; the modules and their counters stay readable), as does leaving a ``with handle:`` block;
    ``set_enabled(False)`` does the same and ``set_enabled(True)`` swaps the sparse modules in again (timing
    the plain model side by side)."""

    model: nn.Module
    modules: dict[str, nn.Module] = field(default_factory=dict)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

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


__all__ = ["CallCounts", "SparsePolicy", "SwappedModules", "parent_of", "resolve_policy"]

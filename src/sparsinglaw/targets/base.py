"""A target spec: what one kind of activation sparsity needs, bundled, and registered by name.

A target is a set of *units* whose small values are zeroed: FFN neurons ``h_i`` (the paper's output
sparsity) or the inputs ``x_j`` of every projection (TEAL-style input sparsity). Its spec gives its units
(``find_units``), hooks before (``attach``) and after (``observe``) each unit that fail loudly when a forward
bypasses them, its dense statistics (sums over tokens, placed from the first batch, reduced over
processes), its threshold rule (CETT c -> one threshold per unit), its thresholds kind, its sparse modules
and its result schema. ``targets.engine.TargetMeasurement`` runs any target's passes; callers take a spec
from ``TARGETS`` and never ask which one they hold."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from sparsinglaw.errors import ConfigError
from sparsinglaw.registry import Registry


class Calls(Protocol):
    """What a target's hooks yield: ``require_called()`` raises ``ModelError`` when some unit's hook never
    fired (its module was bypassed by the forward)."""

    def require_called(self) -> None: ...


class DenseStatistics(Protocol):
    """A target's dense statistics: sums over tokens, so shards of the data combine by all-reduce."""

    def observe(self, unit: Any, x: torch.Tensor, y: torch.Tensor) -> None: ...

    def place(self, unit: Any, x: torch.Tensor, y: torch.Tensor) -> None: ...

    def reduce(self, all_reduce: Callable[[torch.Tensor, str], torch.Tensor]) -> None: ...


class TargetSpec(ABC):
    """One kind of sparsity. Subclasses set the class attributes and implement the finders and hooks."""

    name: ClassVar[str]  # registry name: "ffn-neurons", "projection-inputs"
    side: ClassVar[str]  # the word results, the store and the CLI use: "output" or "input"
    unit: ClassVar[str]  # what one unit is, for messages
    rule: ClassVar[str]  # the threshold rule in words
    thresholds_kind: ClassVar[str]  # the ``thresholds.kinds`` kind of its thresholds files
    sparse_modules: ClassVar[str]  # the sparse compute modules that kind builds ("ffn" or "projections")
    result_schema: ClassVar[str]  # the ``schema`` of its result files

    @abstractmethod
    def find_units(self, model: nn.Module, **options: Any) -> list:
        """The model's units of this kind, in block order (``ModelError`` when its architecture is unknown)."""

    @abstractmethod
    def attach(self, units: Sequence, callback: Callable) -> AbstractContextManager[Calls]:
        """Hooks before every unit for the block's duration; a tensor ``callback`` returns replaces the input."""

    @abstractmethod
    def observe(self, units: Sequence, callback: Callable) -> AbstractContextManager[Calls]:
        """Hooks after every unit: ``callback(unit, x, y)`` with ``y`` the unit's output without bias."""

    @abstractmethod
    def statistics(self, units: Sequence, *, anchors: int = 5, anchor_stride: int = 1) -> DenseStatistics:
        """Empty dense statistics for ``units`` (``anchors`` exact CETT evaluations per unit)."""

    def thresholds(self, statistics: DenseStatistics, cett: float) -> list[float]:
        """The threshold rule: each unit's threshold giving mean relative output error ``cett``."""
        return statistics.curves.thresholds(cett)

    def position_weights(self, units: Sequence) -> list[float] | None:
        """Each unit group's weight in a pass's per-position kept counts (None: every pair counts once)."""
        return None


TARGETS: Registry[TargetSpec] = Registry("sparsity target")


def register_target(spec: TargetSpec, *, replace: bool = False) -> TargetSpec:
    """Add a target spec under ``spec.name`` (``ValueError`` when the name is taken, unless ``replace``)."""
    return TARGETS.register(spec.name, spec, replace=replace)


def target(name: str) -> TargetSpec:
    """The target ``name`` or its side's word (``output``, ``input``); ``ConfigError`` listing the names."""
    for spec in TARGETS.values():
        if name in (spec.name, spec.side):
            return spec
    raise ConfigError(f"unknown sparsity target {name!r}; known: "
                      + ", ".join(f"{s.name} ({s.side})" for s in TARGETS.values()))


def combined(names: Sequence[str]) -> list[TargetSpec]:
    """Combined sparsity: the targets ``names``, each once, in the order given."""
    specs = [target(n) for n in names]
    return list({id(s): s for s in specs}.values())


__all__ = ["Calls", "DenseStatistics", "TARGETS", "TargetSpec", "combined", "register_target", "target"]

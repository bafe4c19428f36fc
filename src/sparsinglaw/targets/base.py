"""A target spec: what one kind of activation sparsity needs, bundled, and registered by name.

A kind of sparsity ("target") is a set of *units* in a model whose small values are zeroed: the FFN
neurons ``h_i`` (the paper's output sparsity, docs/paper.md section 1) or the inputs ``x_j`` of every linear
projection (TEAL-style input sparsity, docs/input_sparsity.md). Everything that differs between the two is
here, behind one interface (docs/architecture.md, "Targets"):

- ``find_units(model)``: its units, through the one architecture registry (``models.architectures``);
- ``attach(units, callback)``: hooks before every unit, ``callback(unit, x)`` may return a replacement of
  the unit's input (a sparse pass); ``observe(units, callback)``: hooks after it, ``callback(unit, x, y)``
  with ``y`` its output without bias (the dense statistics pass). Both yield call counts whose
  ``require_called()`` fails loudly when the forward bypassed the hooked modules;
- ``statistics(units, ...)``: its dense statistics (CETT curves, section 2 of docs/paper.md), sums over
  tokens that ``place`` fixes from the data's first batch and ``reduce`` combines over processes;
- ``thresholds(statistics, c)``: its threshold rule, CETT c -> one threshold per unit, and ``rule``, the
  rule in words;
- ``thresholds_kind`` (a ``threshold_kinds`` kind name), ``sparse_modules`` (the sparse compute modules
  that kind builds) and ``result_schema`` (its result rows).

The measurement engine (``targets.engine.TargetMeasurement``) runs the dense pass and the sparse passes of
any target, sharded over torchrun processes the same way; callers take a spec by name from ``TARGETS``
and never ask which one they hold. Combined sparsity is a list of targets. A third kind (attention heads,
MoE experts) is a third subclass registered here.
"""

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
    thresholds_kind: ClassVar[str]  # the ``threshold_kinds`` kind of its thresholds files
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

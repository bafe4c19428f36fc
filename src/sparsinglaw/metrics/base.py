"""The metric contract and registry.

A metric's ``apply`` gives a rule: per FFN and token, which neurons stay active (the others' ``h_i`` is
zeroed). A registered metric works wherever a metric is chosen (``MeasureConfig(metric=...)``, the CLI):

>>> import torch
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> from sparsinglaw import EvalData, MeasureConfig, measure
>>> from sparsinglaw.metrics import Applied, SparsityMetric, register_metric
>>> class Positive(SparsityMetric):
...     '''Positive: keep the neurons whose activation output is above zero.'''
...     name = "positive"
...     def apply(self, value=None, *, curves=None, layers=None):
...         return Applied(rule=lambda layer, h, s: s > 0, setting={})
>>> _ = register_metric(Positive())
>>> _ = torch.manual_seed(0)
>>> model = LlamaForCausalLM(LlamaConfig(
...     vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
...     num_key_value_heads=2, hidden_act="silu")).eval()
>>> data = EvalData(input_ids=torch.randint(0, 64, (4, 16)), source="random")
>>> result = measure(model, data, MeasureConfig(metric="positive"))
>>> result.metric, 0.3 < result.activation_ratio < 0.7, result.ppl_ratio > 1
('positive', True, True)
>>> _ = _METRICS.unregister("positive")  # doctests share one process: leave the registry as found"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from sparsinglaw.models.adapters import FFNLayer
from sparsinglaw.registry import Registry

# active = rule(layer, h, s): a boolean tensor shaped like h, True where the neuron is kept.
ActiveRule = Callable[[FFNLayer, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Applied:
    """A metric at one setting, ready to run: its rule and how to describe it in results."""

    rule: ActiveRule
    setting: dict[str, Any]
    # Per-FFN scalar thresholds, when the metric has them (CETT: t_l on |h_i| * ||W_down[:, i]||).
    thresholds: list[float] | None = None
    threshold_rule: str = ""
    # False when applying the mask cannot change the output (zeros stay zeros): no sparse pass needed.
    changes_output: bool = True
    # Set when the rule is exactly ``|h_i| * magnitude_norms[l][i] >= thresholds[l]`` (CETT): sparse passes
    # then apply it with one C kernel call per FFN instead of several PyTorch ops (same result).
    magnitude_norms: list[torch.Tensor] | None = None


class SparsityMetric(ABC):
    """A registered sparsity metric.

    ``parameter`` names the metric's setting (e.g. ``"epsilon"``); ``sweep_values`` are the default
    settings of a Pareto sweep. ``needs_cett_curves`` asks the dense pass to gather CETT statistics.
    """

    name: ClassVar[str]
    parameter: ClassVar[str | None] = None
    needs_cett_curves: ClassVar[bool] = False
    sweep_values: ClassVar[tuple[float, ...]] = ()

    @abstractmethod
    def apply(self, value: float | None, *, curves=None, layers=None) -> Applied:
        """The rule at setting ``value`` (validated; ConfigError on a bad value)."""

    def describe(self) -> str:
        return (self.__doc__ or self.name).strip().splitlines()[0]

    def options(self, config) -> dict[str, Any]:
        """Keyword arguments of ``apply`` taken from a ``MeasureConfig`` (Top-k: its ranking scope), so the
        measurement never branches on metric names."""
        return {}

    def solve(self, measurement) -> Solved:
        """The evaluation ``measure`` reports for this metric on a ``sparsinglaw.measure.Measurement``: one
        pass at the configured setting. Metrics that search (PPL-p%) override it."""
        return Solved(measurement.at(self.name, measurement.config.metric_value()))


@dataclass
class Solved:
    """A metric's answer: the evaluation the result is built from; ``finish`` adds what a search learnt."""

    evaluation: Any

    def finish(self, result, measurement) -> None:
        """One-setting metrics add nothing."""


# One Registry rule for all lookups (sparsinglaw.registry): duplicates are a ValueError unless replaced,
# unknown names a ConfigError listing the known ones.
_METRICS: Registry[SparsityMetric] = Registry("metric")


def register_metric(metric: SparsityMetric, *, replace: bool = False) -> SparsityMetric:
    """Add a metric instance under its ``name`` (``replace=True`` to override one)."""
    return _METRICS.register(metric.name, metric, replace=replace)


def get_metric(name: str) -> SparsityMetric:
    """The registered metric ``name`` (ConfigError listing the known metrics otherwise)."""
    return _METRICS.get(name)


def metric_names() -> list[str]:
    return _METRICS.names()

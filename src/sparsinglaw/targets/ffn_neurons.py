"""FFN neurons: the paper's target (docs/paper.md section 1). Its units are ``h_i``, the input of each FFN's
down projection ``y = W_down h``; its threshold rule is CETT's per-layer ``t_l`` on ``|h_i| ||W_down[:, i]||``
(``metrics.cett``). Units are found by the architecture's ``FFNAdapter`` (``models.architectures``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from torch import nn

from sparsinglaw.capture.hooks import CallCount, attach
from sparsinglaw.metrics.cett import THRESHOLD_RULE, CETTCurves
from sparsinglaw.models.adapters import FFNLayer, find_ffn_layers
from sparsinglaw.results import SCHEMA
from sparsinglaw.targets.base import TargetSpec, register_target


class FFNNeurons(TargetSpec):
    """Every FFN's neurons (MoE experts' included): one unit list per model, one threshold per FFN."""

    name = "ffn-neurons"
    side = "output"
    unit = "FFN neuron h_i"
    rule = THRESHOLD_RULE
    thresholds_kind = "output"
    sparse_modules = "ffn"
    result_schema = SCHEMA

    def find_units(self, model: nn.Module, **options) -> list[FFNLayer]:
        return find_ffn_layers(model)

    def attach(self, units: Sequence[FFNLayer], callback: Callable) -> AbstractContextManager[CallCount]:
        """``callback(layer, h, s)`` before the down projection (``s``: the activation's output)."""
        return attach(units, callback)

    def observe(self, units: Sequence[FFNLayer], callback: Callable) -> AbstractContextManager[CallCount]:
        """``callback(layer, h, y)`` after the down projection (``FFNLayer.attach_output``)."""
        return attach(units, callback, output=True)

    def statistics(self, units: Sequence[FFNLayer], *, anchors: int = 5, anchor_stride: int = 1) -> CETTCurves:
        return CETTCurves(units, anchors=anchors, anchor_stride=anchor_stride)

    def thresholds(self, statistics: CETTCurves, cett: float) -> list[float]:
        return statistics.thresholds(cett)


FFN_NEURONS = register_target(FFNNeurons())

__all__ = ["FFNNeurons", "FFN_NEURONS"]

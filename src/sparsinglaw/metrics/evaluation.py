"""What a metric's solve sees of a measurement: one sparse pass (``Evaluation``) and the measurement's
interface (``MeasurementView``), below both ``sparsinglaw.measure`` (which implements them) and the metrics
that search (``metrics.pplp_solve``), so neither imports the other (docs/architecture.md, "Layers").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sparsinglaw.activity import ActivityCounter
from sparsinglaw.engine import SequenceLosses
from sparsinglaw.metrics.base import Applied

if TYPE_CHECKING:
    from sparsinglaw.metrics.cett import CETTCurves


@dataclass
class Evaluation:
    """One sparse pass: its setting, losses and activity."""

    applied: Applied
    losses: SequenceLosses
    activity: ActivityCounter


class MeasurementView(Protocol):
    """A model, its evaluation data and the dense pass (``sparsinglaw.measure.Measurement``)."""

    config: Any  # sparsinglaw.measure.MeasureConfig
    curves: CETTCurves | None
    dense_losses: SequenceLosses | None

    def dense(self, cett_curves: bool) -> None: ...

    def at(self, metric_name: str, value: float | None) -> Evaluation: ...

    def ppl_ratio(self, evaluation: Evaluation) -> float: ...

    def resampling_units(self) -> tuple[Any, Any]: ...

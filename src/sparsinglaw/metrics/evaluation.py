"""What a metric's solve sees of a measurement: one sparse pass (``Evaluation``), the measurement's
interface (``MeasurementView``) and a finished PPL-p% trend search (``TrendAnswer``), below both
``sparsinglaw.measure`` and ``targets.engine`` (which implement and build them) and the metrics that search
(``metrics.pplp_solve``), so neither imports the other (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sparsinglaw.capture.activity import ActivityCounter
from sparsinglaw.capture.passes import SequenceLosses
from sparsinglaw.metrics.base import Applied
from sparsinglaw.metrics.pplp import C_MAX, C_MIN
from sparsinglaw.metrics.pplp_answer import CONFIRM_WIDTH
from sparsinglaw.metrics.pplp_trend import TrendOutcome, TrendSearch

if TYPE_CHECKING:
    from sparsinglaw.metrics.cett import CETTCurves


@dataclass
class Evaluation:
    """One sparse pass: its setting, losses and activity."""

    applied: Applied
    losses: SequenceLosses
    activity: ActivityCounter


@dataclass
class TrendAnswer:
    """A PPL-p% trend search over a target's parameter, finished (``TargetMeasurement.answered``): the search,
    its outcome, every sparse pass (each holding ``losses`` and ``activity``) in order, the answer's interval
    and the warnings to report (the search's, then why the answer has no interval)."""

    search: TrendSearch
    outcome: TrendOutcome
    passes: list[Any] = field(default_factory=list)
    interval: dict | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def no_answer(self) -> str | None:
        """Why the search has no answer (None when it has one)."""
        return self.outcome.no_answer

    @property
    def cett(self) -> float:
        """The answer in the search's variable c (``TrendOutcome.answer``), held within the settings it tries."""
        return float(np.clip(self.outcome.answer, C_MIN, C_MAX))

    def pass_at(self, c: float) -> int | None:
        """The pass within CONFIRM_WIDTH of c (a pass at the answer, ``metrics.pplp_answer``), if any."""
        i, gap = self.search.nearest_pass(math.log(c))
        return i if gap <= CONFIRM_WIDTH else None

    def no_answer_solution(self, parameter: str, **extra) -> dict:
        """The solution of a search with no answer: no value of ``parameter``, and why."""
        return {"method": "trend", parameter: None, "no_answer": self.no_answer,
                "sparse_passes": len(self.search.cetts), "converged": False, **extra}


class MeasurementView(Protocol):
    """A model, its evaluation data and the dense pass (``sparsinglaw.measure.Measurement``)."""

    config: Any  # sparsinglaw.measure.MeasureConfig
    curves: CETTCurves | None
    dense_losses: SequenceLosses | None

    def dense(self, cett_curves: bool) -> None: ...

    def at(self, metric_name: str, value: float | None) -> Evaluation: ...

    def ppl_ratio(self, evaluation: Evaluation) -> float: ...

    def resampling_units(self) -> tuple[Any, Any]: ...

    def trend_search(self, evaluate, **options) -> TrendAnswer: ...

    def answered(self, search: TrendSearch, outcome: TrendOutcome, passes: list, *interval) -> TrendAnswer: ...

    def crossing_interval(self, passes: list, cetts: list[float], target: float, *interval) -> dict | None: ...

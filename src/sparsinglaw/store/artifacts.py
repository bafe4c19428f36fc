"""The files a study writes and the report reads, as dataclasses: one ``to_dict`` / ``from_dict`` each.

The analysis stages write ``to_dict()``, the report reads ``from_dict``; this module imports neither.
``from_dict(doc).to_dict() == doc`` for every file since ``sparsinglaw.analysis/2``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparsinglaw.errors import DataError
from sparsinglaw.store.layout import ANALYSIS_SCHEMA, FITS


def _require(doc: Any, keys: tuple[str, ...], what: str) -> dict:
    """``doc`` when it is a dict with every one of ``keys``; ``DataError`` naming the first missing one."""
    if not isinstance(doc, dict):
        raise DataError(f"{what} is not a JSON object; write it again with `sparsinglaw report PATH --analyze`")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise DataError(f"{what} has no {missing[0]!r}; write it again with `sparsinglaw report PATH --analyze`")
    return doc


@dataclass(frozen=True)
class IntervalRecord:
    """A parameter's interval; ``at_*_bound``: it ends at a solver bound (the value is not an estimate)."""

    low: float | None
    high: float | None
    level: float | None = None
    method: str | None = None
    at_lower_bound: bool = False
    at_upper_bound: bool = False

    @classmethod
    def from_dict(cls, d: dict | None) -> IntervalRecord | None:
        if not d:
            return None
        return cls(d.get("low"), d.get("high"), d.get("level"), d.get("method"), bool(d.get("at_lower_bound")),
                   bool(d.get("at_upper_bound")))

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "level": self.level, "method": self.method,
                "at_lower_bound": self.at_lower_bound, "at_upper_bound": self.at_upper_bound}


@dataclass(frozen=True)
class LimitRecord:
    """The fitted law's limit A0: ``value`` only when identified, ``estimate`` always, ``describe`` the
    fitting stage's sentence about it."""

    value: float | None
    estimate: float | None
    identified: bool
    reason: str
    interval: IntervalRecord | None
    describe: str = ""

    @classmethod
    def from_dict(cls, d: dict | None) -> LimitRecord | None:
        if d is None:
            return None
        return cls(d.get("value"), d.get("estimate"), bool(d.get("identified")), d.get("reason", ""),
                   IntervalRecord.from_dict(d.get("interval")), d.get("describe", ""))

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "estimate": self.estimate, "identified": self.identified,
                "reason": self.reason, "interval": self.interval.to_dict() if self.interval else None,
                "describe": self.describe}


_FIT_NUMBERS = ("mae", "mse", "sse", "aic", "bic", "n_points", "n_skipped", "converged", "level",
                "bootstrap_failures")


@dataclass
class FitRecord:
    """One fitted law (``laws.results.FitResult.to_dict()``) with its curve and band sampled for drawing:
    ``curve`` holds ``tokens``, ``ratio``, ``low``, ``high`` (``low``/``high`` None without a bootstrap)."""

    law: str
    formula: str
    params: dict[str, float | None]
    intervals: dict[str, IntervalRecord]
    limit: LimitRecord | None
    curve: dict[str, Any]
    numbers: dict[str, Any] = field(default_factory=dict)  # mae, mse, ..., as the fit reported them
    misfit: str | None = None  # why the law does not follow its points (laws.solver.misfit): not drawn as the law

    @property
    def mae(self) -> float | None:
        return self.numbers.get("mae")

    @classmethod
    def from_dict(cls, d: dict) -> FitRecord:
        _require(d, ("law", "params", "curve"), f"{FITS}: a fit")
        return cls(d["law"], d.get("formula", ""), d["params"],
                   {k: IntervalRecord.from_dict(v) for k, v in d.get("intervals", {}).items()},
                   LimitRecord.from_dict(d.get("limit")), d["curve"],
                   {k: d[k] for k in _FIT_NUMBERS if k in d}, d.get("misfit"))

    def to_dict(self) -> dict[str, Any]:
        doc = {"law": self.law, "formula": self.formula, "curve": self.curve, "params": self.params,
               **self.numbers, "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
               "limit": self.limit.to_dict() if self.limit else None}
        if self.misfit is not None:  # only then: files written before it existed round-trip unchanged
            doc["misfit"] = self.misfit
        return doc


_POPULATION_KEYS = ("dead_intervals", "live", "live_intervals", "never_active", "decay_start")
_CELL_KEYS = ("cell", "activation", "hidden_size", "num_layers", "ratio", "n_params", "tokens_budget", "points")


@dataclass
class CellRecord:
    """One model of ``fits.json``: its shape, every tracked measurement (``points``: [tokens, value];
    ``intervals``: [tokens, low, high]) and its fit, or ``fit_error`` saying why there is none. Rows of the
    input section add the weight bytes ratio per checkpoint (``bytes``, ``bytes_intervals``)."""

    cell: str
    activation: str
    hidden_size: int
    num_layers: int
    ratio: float
    n_params: float
    tokens_budget: int
    points: list[list[float]]
    epochs: float | None = None
    metric: str = "pplp"
    setting: dict[str, Any] | None = None
    interval_level: float | None = None
    final_loss: float | None = None
    intervals: list[list[float]] = field(default_factory=list)
    dead: list[list[float]] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)
    fit: FitRecord | None = None
    fit_error: str | None = None
    bytes: list[list[float]] | None = None  # input section only, with the two below
    bytes_intervals: list[list[float]] | None = None
    final_bytes_ratio: float | None = None
    # The neuron population per checkpoint, where tracking recorded it (absent from older files): the
    # dead-neuron ratio's interval, the activation ratio over live neurons with its interval, the share never
    # active in the dense pass, and the tokens where the learning rate starts to decay.
    dead_intervals: list[list[float]] = field(default_factory=list)
    live: list[list[float]] = field(default_factory=list)
    live_intervals: list[list[float]] = field(default_factory=list)
    never_active: list[list[float]] = field(default_factory=list)
    decay_start: float | None = None

    @property
    def n_points(self) -> int:
        return len(self.points)

    @property
    def final_activation_ratio(self) -> float | None:
        return self.points[-1][1] if self.points else None

    @classmethod
    def from_dict(cls, d: dict) -> CellRecord:
        _require(d, _CELL_KEYS, f"{FITS}: a model row")
        fit = FitRecord.from_dict(d["fit"]) if d.get("fit") else None
        return cls(d["cell"], d["activation"], d["hidden_size"], d["num_layers"], d["ratio"], d["n_params"],
                   d["tokens_budget"], d["points"], d.get("epochs"), d.get("metric", "pplp"), d.get("setting"),
                   d.get("interval_level"), d.get("final_loss"), d.get("intervals", []), d.get("dead", []),
                   d.get("losses", []), fit, d.get("fit_error"), d.get("bytes"), d.get("bytes_intervals"),
                   d.get("final_bytes_ratio"), **{k: d[k] for k in _POPULATION_KEYS if d.get(k) is not None})

    def to_dict(self) -> dict[str, Any]:
        doc = {"cell": self.cell, "activation": self.activation, "hidden_size": self.hidden_size,
               "num_layers": self.num_layers, "ratio": self.ratio, "n_params": self.n_params,
               "tokens_budget": self.tokens_budget, "epochs": self.epochs, "metric": self.metric,
               "setting": self.setting, "interval_level": self.interval_level, "n_points": self.n_points,
               "final_activation_ratio": self.final_activation_ratio, "final_loss": self.final_loss,
               "points": self.points, "intervals": self.intervals, "dead": self.dead, "losses": self.losses,
               "fit": self.fit.to_dict() if self.fit else None, "fit_error": self.fit_error}
        if self.bytes is not None:
            doc.update(bytes=self.bytes, bytes_intervals=self.bytes_intervals or [],
                       final_bytes_ratio=self.final_bytes_ratio)
        doc.update({k: getattr(self, k) for k in _POPULATION_KEYS if getattr(self, k)})  # only where recorded
        return doc


@dataclass
class FitsDocument:
    """``fits.json``: every model with its fit, the width-depth and scale groups, the interval level; and
    ``inputs``, the same analysis of input sparsity where it was tracked (its ``quantity`` says what was
    fitted; it has no ``schema`` of its own)."""

    cells: list[CellRecord]
    widthdepth: list[dict] = field(default_factory=list)
    scale: list[dict] = field(default_factory=list)
    level: float = 0.9
    skip_fraction: float | None = None
    schema: str | None = ANALYSIS_SCHEMA
    quantity: str | None = None
    inputs: FitsDocument | None = None

    @classmethod
    def from_dict(cls, d: dict) -> FitsDocument:
        """``DataError`` (one line, naming the command that writes it) for a file of another schema."""
        _require(d, ("cells", "level"), FITS)
        if d.get("schema", ANALYSIS_SCHEMA) != ANALYSIS_SCHEMA:
            raise DataError(f"{FITS} is schema {d.get('schema')!r}, this sparsinglaw reads {ANALYSIS_SCHEMA}: "
                            "write it again with `sparsinglaw report PATH --analyze`")
        inputs = cls.from_dict(d["inputs"]) if isinstance(d.get("inputs"), dict) else None
        return cls([CellRecord.from_dict(c) for c in d["cells"]], d.get("widthdepth", []), d.get("scale", []),
                   float(d["level"]), d.get("skip_fraction"), d.get("schema"), d.get("quantity"), inputs)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schema": self.schema} if self.schema is not None else {}
        doc.update(cells=[c.to_dict() for c in self.cells], widthdepth=self.widthdepth, scale=self.scale,
                   level=self.level, skip_fraction=self.skip_fraction)
        if self.quantity is not None:
            doc["quantity"] = self.quantity
        if self.inputs is not None:  # absent when input sparsity was not tracked
            doc["inputs"] = self.inputs.to_dict()
        return doc


@dataclass
class SetupDocument:
    """``setup.json``: how the study was run (``track``: its tracking settings; a bare run has none)."""

    name: str
    kind: str
    metric: str | None = None
    p: float = 1.0
    track: dict[str, Any] | None = None  # mode, calibrate_last, p, max_tokens (input_sparsity when tracked)
    data_source: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> SetupDocument:
        _require(d, ("name", "kind"), "setup.json")
        return cls(d["name"], d["kind"], d.get("metric"), float(d.get("p", 1.0)), d.get("track"),
                   d.get("data_source"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "track": self.track, "data_source": self.data_source,
                "metric": self.metric, "p": self.p}


@dataclass(frozen=True)
class Check:
    """One of the paper's findings checked on the runs: ``verdict`` agrees, disagrees or inconclusive."""

    claim: str
    paper: str
    found: str
    verdict: str
    kind: str | None = None  # "trend" or "limit" (study.compare.CHECK_KINDS); None in files written before

    @classmethod
    def from_dict(cls, d: dict) -> Check:
        _require(d, ("claim", "paper", "found", "verdict"), "comparison.json: a check")
        return cls(d["claim"], d["paper"], d["found"], d["verdict"], d.get("kind"))

    def to_dict(self) -> dict[str, str]:
        doc = {"claim": self.claim, "paper": self.paper, "found": self.found, "verdict": self.verdict}
        return doc | ({"kind": self.kind} if self.kind is not None else {})


@dataclass
class ComparisonDocument:
    """``comparison.json``: the verdicts against the paper, their counts and one-sentence summary; and
    ``inputs``, the same checks on input sparsity where it was tracked."""

    checks: list[Check]
    counts: dict[str, int]
    summary: str
    inputs: ComparisonDocument | None = None
    counts_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # {} in files written before

    @classmethod
    def from_dict(cls, d: dict) -> ComparisonDocument:
        _require(d, ("checks", "summary"), "comparison.json")
        inputs = cls.from_dict(d["inputs"]) if isinstance(d.get("inputs"), dict) else None
        return cls([Check.from_dict(c) for c in d["checks"]], d.get("counts", {}), d["summary"], inputs,
                   d.get("counts_by_kind") or {})

    def checks_of_kind(self, kind: str) -> list[Check]:
        """The checks resting on ``kind`` ("trend" or "limit"); files written before count as trend checks."""
        return [c for c in self.checks if (c.kind or "trend") == kind]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"checks": [c.to_dict() for c in self.checks], "counts": self.counts,
                               "summary": self.summary}
        if self.counts_by_kind:
            doc["counts_by_kind"] = self.counts_by_kind
        if self.inputs is not None:
            doc["inputs"] = self.inputs.to_dict()
        return doc


@dataclass
class PaperDocument:
    """``paper.json``: the paper's published curves (each with its published fit drawn over its tokens,
    ``fit_curve``), its published law parameters and their MAE, keyed like ``0.1b_relu``."""

    curves: list[dict[str, Any]]
    published: dict[str, dict[str, float]]
    published_mae: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> PaperDocument:
        _require(d, ("curves", "published"), "paper.json")
        return cls(d["curves"] or [], d["published"], d.get("published_mae") or {})

    def to_dict(self) -> dict[str, Any]:
        return {"curves": self.curves, "published": self.published, "published_mae": self.published_mae}

    def published_value(self, law: str, name: str) -> float | None:
        """The paper's 0.1B value of parameter ``name`` of the ``law`` law (docs/paper.md section 3)."""
        return self.published.get(f"0.1b_{law}", {}).get(name)


@dataclass
class ProbesDocument:
    """``probes.json``: per-layer frequencies and per-token ratios on each model's last checkpoint
    (``details``: cell, checkpoint, activation_ratio, neuron_frequency, token_detail), the two details
    whose tokens match (``pair``, for the per-token scatter) and the metric comparison on a cell
    (``pareto``: cell, checkpoint, points) when no pretrained model was compared."""

    details: list[dict[str, Any]] = field(default_factory=list)
    pair: list[int] | None = None
    pareto: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, d: dict) -> ProbesDocument:
        _require(d, ("details",), "probes.json")
        return cls(d["details"] or [], d.get("pair"), d.get("pareto"))

    def to_dict(self) -> dict[str, Any]:
        return {"details": self.details, "pair": self.pair, "pareto": self.pareto}


__all__ = ["Check", "CellRecord", "ComparisonDocument", "FitRecord", "FitsDocument", "IntervalRecord",
           "LimitRecord", "PaperDocument", "ProbesDocument", "SetupDocument"]

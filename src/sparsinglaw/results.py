"""Typed measurement results that serialize to JSON (and back) and print as a readable table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from sparsinglaw.fileio import JsonFile
from sparsinglaw.tables import (
    ONE_PASS,
    aligned_table,
    column_decimals,
    format_estimate,
    format_number,
    format_with_error,
)

SCHEMA = "sparsinglaw.measure/1"


@dataclass
class Record:
    """A typed record written as the JSON object it replaced: ``to_dict`` gives back the keys it was read from
    (in their order) and the fields set since, ``extra`` holding the keys without a field; ``r["key"]`` and
    ``r.get`` still read it like that object, so files, stores and code written against it keep working."""

    extra: dict[str, Any] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list, repr=False)  # the keys of the object read, in order

    def _names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in ("extra", "keys")]

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.to_dict()

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._names():
            setattr(self, key, value)
        else:
            self.extra[key] = value
        if key not in self.keys:
            self.keys.append(key)

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self[key] = value

    def to_dict(self) -> dict[str, Any]:
        own = {k: getattr(self, k) for k in self._names() if getattr(self, k) is not None or k in self.keys}
        data = {k: v.to_dict() if isinstance(v, Record) else v for k, v in {**own, **self.extra}.items()}
        order = {k: i for i, k in enumerate(self.keys)}
        return {k: data[k] for k in sorted(data, key=lambda k: order.get(k, len(order)))}

    @classmethod
    def of(cls, data: dict[str, Any] | Record | None):
        """``data`` as this record (None stays None; a record is kept as it is)."""
        if data is None or isinstance(data, cls):
            return data
        names = {f.name for f in fields(cls)} - {"extra", "keys"}
        return cls(**{k: v for k, v in data.items() if k in names},
                   extra={k: v for k, v in data.items() if k not in names}, keys=list(data))


@dataclass
class Interval(Record):
    """A bootstrap interval: its level and method, and a (low, high) per quantity (``extra``: any other)."""

    level: float | None = None
    method: str | None = None
    activation_ratio: list[float] | None = None  # output target
    cett: list[float] | None = None
    value: list[float] | None = None  # input target: the method's parameter
    kept_share: list[float] | None = None
    bytes_ratio: list[float] | None = None
    censored_fraction: float | None = None  # share of resamples crossing outside the passes


@dataclass
class Solution(Record):
    """How a PPL-p% answer (or a calibrated setting) was defined and found (``metrics.pplp_solve``)."""

    method: str | None = None  # trend | lowest-crossing | cett-calibrated
    cett: float | None = None
    value: float | None = None  # input target: the method's parameter at the answer
    no_answer: str | None = None  # why a search has no answer
    converged: bool | None = None
    sparse_passes: int | None = None
    standard_error: float | None = None  # of the trend, in PPL ratio, at the answer
    interval: Interval | None = None  # input target: the answer's interval

    def __post_init__(self) -> None:
        self.interval = Interval.of(self.interval)


class SolvedRow:
    """A result row of either target whose PPL-p% answer is a ``Solution`` (and, where the row has one, its
    interval an ``Interval``): solvers and files written before give dicts, typed on assignment."""

    typed: ClassVar[dict[str, type[Record]]] = {"solution": Solution}

    def __setattr__(self, name: str, value: Any) -> None:
        typed = self.typed.get(name)
        super().__setattr__(name, typed.of(value) if typed else value)

    @property
    def no_answer(self) -> str | None:
        """Why this row's PPL-p% search has no answer (None when it has one, or for a fixed setting)."""
        return self.solution.no_answer if self.solution else None


@dataclass
class LayerResult:
    """One FFN (or expert): its activation ratio, threshold and dead-neuron share."""

    name: str
    block: int
    width: int
    activation_ratio: float
    dead_neuron_ratio: float
    threshold: float | None = None  # t_l for CETT / PPL-p% (apply as ``threshold_rule`` says)
    expert: int | None = None


@dataclass
class MeasureResult(SolvedRow, JsonFile):
    """Outcome of one metric at one setting (for PPL-p%: at the reported solution)."""

    typed: ClassVar[dict[str, type[Record]]] = {"solution": Solution, "interval": Interval}

    model: str
    metric: str
    setting: dict[str, Any]
    dense_ppl: float
    sparse_ppl: float
    ppl_ratio: float
    activation_ratio: float
    threshold_rule: str
    layers: list[LayerResult]
    dead_neuron_ratio: float
    n_tokens: int
    n_sequences: int
    seq_len: int
    data_source: str
    forward_passes: int
    live_activation_ratio: float | None = None  # the activation ratio over neurons that are not dead
    never_active_ratio: float | None = None  # neurons with s = act(W_gate x) zero on every token (dense pass)
    seconds: float = 0.0
    interval: Interval | None = None  # confidence interval (PPL-p%), see metrics.pplp
    search: list[dict[str, float]] = field(default_factory=list)  # every (cett, ppl_ratio, activation_ratio)
    ratio_noise: dict[str, Any] | None = None  # PPL-p%: the ratio's scatter around its trend, see metrics.pplp
    solution: Solution | None = None  # PPL-p%: how the answer was defined and found, see metrics.pplp_solve
    warnings: list[str] = field(default_factory=list)
    token_detail: dict[str, Any] | None = None  # {"tokens": [...], "layer_ratios": [[per layer] per token]}
    neuron_frequency: list[list[float]] | None = None  # per FFN, per neuron share of tokens active
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    @property
    def thresholds(self) -> list[float | None]:
        return [layer.threshold for layer in self.layers]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureResult:
        values = cls.known_fields(data)
        values["layers"] = [LayerResult(**layer) for layer in data.get("layers", [])]
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """The headline numbers as one flat record (a row of a comparison across models or checkpoints)."""
        row = {"model": self.model, "metric": self.metric, **{f"setting.{k}": v for k, v in self.setting.items()},
               "dense_ppl": self.dense_ppl, "sparse_ppl": self.sparse_ppl, "ppl_ratio": self.ppl_ratio,
               "activation_ratio": self.activation_ratio, "dead_neuron_ratio": self.dead_neuron_ratio,
               "n_tokens": self.n_tokens, "forward_passes": self.forward_passes}
        if self.interval and self.interval.activation_ratio:
            row["activation_ratio.low"], row["activation_ratio.high"] = self.interval.activation_ratio
        return row

    def to_frame(self, level: str = "layer"):
        """A pandas DataFrame: one row per FFN (``level="layer"``) or the one-row ``summary()``."""
        import pandas as pd

        if level == "summary":
            return pd.DataFrame([self.summary()])
        if level != "layer":
            raise ValueError(f"level must be 'layer' or 'summary', got {level!r}")
        return pd.DataFrame([asdict(layer) for layer in self.layers])

    def _repr_html_(self) -> str:
        """Notebook display: the summary, then the per-FFN table."""
        return self.to_frame("summary").to_html(index=False) + self.to_frame("layer").to_html(index=False)

    def _not_an_answer(self) -> str:
        """A PPL-p% search without an answer shows its last pass's numbers, labelled as such."""
        if self.no_answer:
            return "   (the last pass's, not an answer: see 'solution')"
        return ""

    def _solution_lines(self) -> list[str]:
        """PPL-p%: which definition, its standard error, where the PPL and activation ratios were read."""
        sol = self.solution
        if not sol or sol.method != "trend":
            return []
        if sol.no_answer:
            return [f"solution  NONE after {sol.sparse_passes} sparse passes: {sol.no_answer}"]
        passes = ", ".join(f"{c:.4g}" for c in sol["passes"])
        where = {"measured": f"measured in the pass at CETT {passes}",
                 "interpolated": f"interpolated between the passes at CETT {passes}",
                 "extrapolated": f"extrapolated from the passes at CETT {passes}"}[sol["activation"]]
        state = "converged" if sol.converged else "NOT converged (see the warnings)"
        ratio = (f"measured in the pass at CETT {sol['ppl_ratio_cett']:.4g}" if sol.get("ppl_ratio_source") == "measured"
                 else "interpolated between the passes (no pass at the answer)")
        cett = format_estimate(sol.cett, self.interval and self.interval.cett)[0]  # to its interval's precision
        return [
            f"solution  trend crosses {1 + self.setting['p'] / 100:.4f} at CETT {cett} "
            f"(standard error {sol.standard_error:.2g} in PPL ratio, {sol.sparse_passes} sparse passes, {state})",
            f"          activation ratio {where} ({sol['distance']:.1%} away in log CETT); PPL ratio {ratio}",
        ]

    def table(self, max_layers: int = 64, warnings: bool = True) -> str:
        """Human-readable summary: what was measured, each headline estimate rounded to its interval with the
        interval beside it (or why it has none), then one line per FFN (and the warnings, unless the caller
        logs them itself). The JSON keeps every digit."""
        setting = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.setting.items())
        lines = [
            f"model     {self.model}",
            f"metric    {self.metric}" + (f" ({setting})" if setting else ""),
            f"data      {self.data_source}: {self.n_tokens} tokens in {self.n_sequences} x {self.seq_len}",
            f"passes    {self.forward_passes} forward passes ({self.seconds:.1f} s)",
            f"apply     {self.threshold_rule}",
            "",
            aligned_table(["quantity", "estimate", self._interval_header()], self._estimate_rows(), align="lrl"),
            *self._solution_lines(),
            "",
            self._layer_table(max_layers),
        ]
        if warnings:
            lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def _interval_header(self) -> str:
        return f"{self.interval.level:.0%} interval" if self.interval else "interval"

    def _estimate_rows(self) -> list[list[str]]:
        """(quantity, estimate, interval or why none): PPL-p%'s bootstrap interval for the activation ratio and
        CETT, the scatter of its passes for the PPL ratio; one pass at a fixed setting has none."""
        ratio_iv, cett_iv = (self.interval.activation_ratio, self.interval.cett) if self.interval else (None, None)
        # An answer with no interval says why in a warning (too few blocks of tokens, nothing bracketing the
        # target): point there, not at "one pass", which it may not be.
        why_none = any(w.startswith("no interval") for w in self.warnings)
        why = self._not_an_answer().strip() or ("see the warnings" if self.interval or why_none else ONE_PASS)
        noise = (self.ratio_noise or {}).get("sd")
        ratio, ratio_sd = format_with_error(self.ppl_ratio, noise)
        rows = [["dense PPL", f"{self.dense_ppl:.2f}", ONE_PASS], ["sparse PPL", f"{self.sparse_ppl:.2f}", ONE_PASS],
                ["PPL ratio", ratio if noise else f"{self.ppl_ratio:.4f}",
                 f"{ratio_sd} (sd of the passes' scatter) {self._not_an_answer().strip()}".rstrip() if noise else why],
                ["activation ratio", *_share(self.activation_ratio, ratio_iv, why)],
                ["sparsity", *_share(1 - self.activation_ratio, ratio_iv and (1 - ratio_iv[1], 1 - ratio_iv[0]), why)]]
        if cett_iv:
            rows.append(["CETT", *format_estimate(self.setting.get("cett"), cett_iv)])
        rows.append(["dead neurons", f"{self.dead_neuron_ratio:.4f}", f"{ONE_PASS} (active on < 0.1% of tokens)"])
        if self.live_activation_ratio is not None and self.dead_neuron_ratio > 0:
            rows.append(["live neurons' ratio", f"{self.live_activation_ratio:.4f}",
                         f"{ONE_PASS} (activation ratio over the neurons not dead)"])
        return rows

    def _layer_table(self, max_layers: int) -> str:
        """One row per FFN (values of one pass: no intervals; thresholds to 3 significant digits of the smallest)."""
        shown = self.layers[:max_layers]
        places = column_decimals([layer.threshold for layer in shown])
        body = [[layer.name, layer.width, f"{layer.activation_ratio:.4f}", f"{layer.dead_neuron_ratio:.4f}",
                 format_number(layer.threshold, places)] for layer in shown]
        lines = [aligned_table(["ffn", "d_f", "act.ratio", "dead", "threshold t_l"], body)]
        if len(self.layers) > max_layers:
            lines.append(f"... {len(self.layers) - max_layers} more in the JSON output")
        lines.append("per-FFN values come from one pass: no intervals")
        return "\n".join(lines)


def _share(value: float, interval, why: str) -> tuple[str, str]:
    """A share rounded to its interval, or to 4 decimals with the reason it has none."""
    return format_estimate(value, interval) if interval else (f"{value:.4f}", why)

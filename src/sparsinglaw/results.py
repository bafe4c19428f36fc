"""Typed measurement results that serialize to JSON (and back) and print as a readable table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sparsinglaw.fileio import JsonFile

SCHEMA = "sparsinglaw.measure/1"


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
class MeasureResult(JsonFile):
    """Outcome of one metric at one setting (for PPL-p%: at the reported solution)."""

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
    interval: dict[str, Any] | None = None  # confidence interval (PPL-p%), see metrics.pplp
    search: list[dict[str, float]] = field(default_factory=list)  # every (cett, ppl_ratio, activation_ratio)
    ratio_noise: dict[str, Any] | None = None  # PPL-p%: the ratio's scatter around its trend, see metrics.pplp
    solution: dict[str, Any] | None = None  # PPL-p%: how the answer was defined and found, see metrics.pplp_solve
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
        if self.interval:
            row["activation_ratio.low"], row["activation_ratio.high"] = self.interval["activation_ratio"]
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
        if (self.solution or {}).get("no_answer"):
            return "   (the last pass's, not an answer: see 'solution')"
        return ""

    def _solution_lines(self) -> list[str]:
        """PPL-p%: which definition, its standard error, where the PPL and activation ratios were read."""
        sol = self.solution
        if not sol or sol.get("method") != "trend":
            return []
        if sol.get("no_answer"):
            return [f"solution         NONE after {sol['sparse_passes']} sparse passes: {sol['no_answer']}"]
        passes = ", ".join(f"{c:.4g}" for c in sol["passes"])
        where = {"measured": f"measured in the pass at CETT {passes}",
                 "interpolated": f"interpolated between the passes at CETT {passes}",
                 "extrapolated": f"extrapolated from the passes at CETT {passes}"}[sol["activation"]]
        state = "converged" if sol.get("converged") else "NOT converged (see the warnings)"
        ratio = (f"measured in the pass at CETT {sol['ppl_ratio_cett']:.4g}" if sol.get("ppl_ratio_source") == "measured"
                 else "interpolated between the passes (no pass at the answer)")
        return [
            f"solution         trend crosses {1 + self.setting['p'] / 100:.4f} at CETT {sol['cett']:.4g} "
            f"(standard error {sol['standard_error']:.2g} in PPL ratio, {sol['sparse_passes']} sparse passes, {state})",
            f"                 activation ratio {where} ({sol['distance']:.1%} away in log CETT); PPL ratio {ratio}",
        ]

    def table(self, max_layers: int = 64, warnings: bool = True) -> str:
        """Human-readable summary: headline numbers, then one line per FFN (and the warnings, unless the
        caller logs them itself)."""
        setting = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.setting.items())
        lines = [
            f"model            {self.model}",
            f"metric           {self.metric}" + (f" ({setting})" if setting else ""),
            f"data             {self.data_source}: {self.n_tokens} tokens in {self.n_sequences} x {self.seq_len}",
            f"dense PPL        {self.dense_ppl:.4f}",
            f"sparse PPL       {self.sparse_ppl:.4f}",
            f"PPL ratio        {self.ppl_ratio:.5f}" + self._not_an_answer(),
            f"activation ratio {self.activation_ratio:.4f}   (sparsity {1 - self.activation_ratio:.4f})"
            + self._not_an_answer(),
            f"dead neurons     {self.dead_neuron_ratio:.4f}   (active on < 0.1% of tokens)",
            *([f"live neurons     activation ratio {self.live_activation_ratio:.4f} over the neurons not dead"]
              if self.live_activation_ratio is not None and self.dead_neuron_ratio > 0 else []),
            f"forward passes   {self.forward_passes}   ({self.seconds:.1f} s)",
        ]
        lines.extend(self._solution_lines())
        if self.interval:
            lo, hi = self.interval["activation_ratio"]
            clo, chi = self.interval["cett"]
            lines.append(f"{self.interval['level']:.0%} interval     activation ratio [{lo:.4f}, {hi:.4f}], CETT [{clo:.4g}, {chi:.4g}]")
        lines.append(f"apply            {self.threshold_rule}")
        lines.append("")
        lines.append(f"{'ffn':<24} {'d_f':>6} {'act.ratio':>10} {'dead':>7} {'threshold t_l':>14}")
        for layer in self.layers[:max_layers]:
            t = "-" if layer.threshold is None else f"{layer.threshold:.6g}"
            lines.append(f"{layer.name:<24} {layer.width:>6} {layer.activation_ratio:>10.4f} {layer.dead_neuron_ratio:>7.4f} {t:>14}")
        if len(self.layers) > max_layers:
            lines.append(f"... {len(self.layers) - max_layers} more in the JSON output")
        if warnings:
            lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

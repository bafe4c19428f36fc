"""Typed results of input-sparsity measurement; JSON round trip and a readable table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparsinglaw.fileio import JsonFile
from sparsinglaw.results import Solution, SolvedRow
from sparsinglaw.tables import ONE_PASS, aligned_table, estimate_cell, format_estimate
from sparsinglaw.targets.projection_inputs import SCHEMA


@dataclass
class ProjectionResult:
    """One projection at one setting: its threshold and the measured share of inputs kept."""

    name: str
    block: int
    kind: str
    in_features: int
    out_features: int
    threshold: float
    kept_share: float  # mean over tokens of the share of inputs kept (measured in the sparse pass)
    target_sparsity: float | None = None  # TEAL methods: the input sparsity the threshold was chosen for

    def bytes_per_token(self, bytes_per_weight: float) -> float:
        """Weight bytes read per token at batch 1: kept input columns x output rows."""
        return self.kept_share * self.in_features * self.out_features * bytes_per_weight


@dataclass
class MethodResult(SolvedRow):
    """One method (cett, teal-uniform, teal-greedy) at its solution or fixed value."""

    method: str
    parameter: str  # "cett" or "sparsity"
    value: float
    rule: str
    sparse_ppl: float
    ppl_ratio: float
    kept_share: float  # parameter-weighted over projections: the share of projection weights read
    bytes_per_token: float
    bytes_ratio: float  # bytes per token over the dense model's
    projections: list[ProjectionResult]
    search: list[dict[str, float]] = field(default_factory=list)  # every pass: value, ppl_ratio, kept_share
    solution: Solution | None = None  # PPL-p%: the trend's crossing, standard error, converged, interval
    warnings: list[str] = field(default_factory=list)

    def kept_by_kind(self) -> dict[str, float]:
        """Kept share per projection kind, averaged over blocks (weighted by size)."""
        totals: dict[str, list[float]] = {}
        for p in self.projections:
            size = p.in_features * p.out_features
            acc = totals.setdefault(p.kind, [0.0, 0.0])
            acc[0] += p.kept_share * size
            acc[1] += size
        return {k: a / b for k, (a, b) in totals.items()}


@dataclass
class InputSparsityResult(JsonFile):
    """Input sparsity of every projection: each method's thresholds, kept shares, bytes and PPL ratio."""

    model: str
    p: float | None  # PPL-p% target in percent (None: fixed settings)
    dense_ppl: float
    bytes_per_weight: float
    dense_bytes_per_token: float  # all weights a dense decode step reads
    other_bytes_per_token: float  # the part outside the sparsified projections (lm_head, norms, one embedding row)
    methods: list[MethodResult]
    n_tokens: int
    n_sequences: int
    seq_len: int
    data_source: str
    forward_passes: int
    seconds: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    def method(self, name: str) -> MethodResult:
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(f"no method {name!r} in this result ({', '.join(m.method for m in self.methods)})")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSparsityResult:
        values = cls.known_fields(data)
        methods = []
        for m in data.get("methods", []):
            m = dict(m)
            m["projections"] = [ProjectionResult(**p) for p in m.get("projections", [])]
            methods.append(MethodResult(**m))
        values["methods"] = methods
        return cls(**values)

    def table(self) -> str:
        """Formats only: one row per method, each estimate rounded to its interval with the interval beside it
        (PPL-p% solutions; kept share by the kinds present from the pass at the answer), then each solution."""
        target = f"PPL-{self.p:g}%" if self.p is not None else "fixed settings"
        kinds = list(dict.fromkeys(p.kind for m in self.methods for p in m.projections))  # the layout's order
        level = next((m.solution.interval.level for m in self.methods if m.solution and m.solution.interval), None)
        span = f" [{level:.0%} interval]" if level else ""
        lines = [f"model  {self.model}   ({target}, {self.n_tokens} tokens, dense PPL {self.dense_ppl:.2f})",
                 f"dense weight bytes per token {self.dense_bytes_per_token / 1e6:.2f} MB "
                 f"({self.other_bytes_per_token / 1e6:.2f} MB outside the projections)", "",
                 aligned_table(["method", f"value{span}", "PPL ratio", f"kept{span}", f"bytes{span}", "MB/token",
                                *kinds], [_method_row(m, kinds) for m in self.methods])]
        lines.append(_no_interval_note(self.methods, self.p))
        solved = [m for m in self.methods if m.solution]
        if solved:
            lines.append("")
        lines += [f"{m.method:<14} {_solution_line(m.solution, 1 + self.p / 100)}" for m in solved]
        return "\n".join(lines)


def _method_row(m: MethodResult, kinds: list[str]) -> list[str]:
    """A method's cells: value, kept share and bytes ratio with the solution's interval where it has one."""
    if m.no_answer:
        return [m.method, "no answer (see below)", *[""] * (4 + len(kinds))]
    iv = m.solution and m.solution.interval
    by_kind = m.kept_by_kind()

    def share(value: float, interval) -> str:  # without an interval: three decimals, as the kinds' columns
        return estimate_cell(value, interval) if interval else f"{value:.3f}"

    return [m.method, estimate_cell(m.value, iv and iv.value), f"{m.ppl_ratio:.4f}",
            share(m.kept_share, iv and iv.kept_share), share(m.bytes_ratio, iv and iv.bytes_ratio),
            f"{m.bytes_per_token / 1e6:.2f}", *(f"{by_kind[k]:.2f}" if k in by_kind else "-" for k in kinds)]


def _no_interval_note(methods: list[MethodResult], p: float | None) -> str:
    """Why the estimates without brackets have no interval."""
    if p is None:
        return "fixed settings: one pass each, so no intervals (PPL-p% resamples its passes for them)"
    missing = [m.method for m in methods if not m.no_answer and not (m.solution and m.solution.interval)]
    note = f"PPL ratio, MB/token and the kinds' kept shares: {ONE_PASS} (the pass at the answer)"
    return note + (f"; {', '.join(missing)}: no interval (its warnings say why)" if missing else "")


def _solution_line(sol: Solution, target: float) -> str:
    passes = "?" if sol.sparse_passes is None else sol.sparse_passes
    if sol.no_answer:
        return f"NO ANSWER after {passes} sparse passes: {sol.no_answer}"
    state = "converged" if sol.converged else "NOT converged (see the warning)"
    iv = sol.interval
    value, value_iv = format_estimate(sol.value, iv and iv.value)
    line = (f"trend crosses {target:.4f} at {value} (standard error {sol.standard_error:.2g} in PPL "
            f"ratio, {passes} sparse passes, {state})")
    if iv:
        line += f"; {iv.level:.0%} interval: value {value_iv}, kept {format_estimate(0.0, iv.kept_share)[1]}"
        if (iv.censored_fraction or 0) > 0.05:  # resamples held at the edge of the passes: a bound, not a finding
            line += f" (at the passes' edge in {iv.censored_fraction:.0%} of resamples: a lower bound on the width)"
    return line


__all__ = ["InputSparsityResult", "MethodResult", "ProjectionResult", "SCHEMA"]

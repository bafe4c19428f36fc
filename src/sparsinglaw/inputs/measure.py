"""Measure input sparsity of every projection: the Python API.

    from sparsinglaw.inputs import InputConfig, measure_inputs
    result = measure_inputs(model, data, InputConfig(p=1.0))     # PPL-1% of each method
    print(result.table()); result.save("inputs.json")

One dense pass gathers the statistics; TEAL's greedy allocation runs on a few calibration sequences; each
method setting costs one sparse pass, whose kept shares are counted. PPL-p% runs the engine's trend search
over the method's parameter (``targets.engine``), as the output target's does over CETT."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sparsinglaw.capture.activity import ActivityCounter
from sparsinglaw.capture.passes import SequenceLosses
from sparsinglaw.config import Config
from sparsinglaw.data.batches import EvalData, as_eval_data
from sparsinglaw.distributed import all_reduce
from sparsinglaw.errors import ConfigError
from sparsinglaw.inputs.greedy import GreedyPath, greedy_path, greedy_setting
from sparsinglaw.inputs.results import InputSparsityResult, MethodResult, ProjectionResult
from sparsinglaw.metrics.pplp import C_MAX
from sparsinglaw.models.projections import KINDS, Projection
from sparsinglaw.provenance import stamp
from sparsinglaw.results import Solution
from sparsinglaw.targets.engine import TargetMeasurement
from sparsinglaw.targets.projection_inputs import (
    PROJECTION_INPUTS,
    InputStatistics,
    Setting,
    cett_setting,
    keep_mask,
    uniform_setting,
)

METHODS = ("cett", "teal-uniform", "teal-greedy")
MAX_SPARSITY = 0.99  # a TEAL solution is held below dropping every input
# The TEAL methods' trend search runs over c = sparsity ** SPARSITY_POWER (still a power law), so that the
# search's steps, set for CETT's crossings decades apart, fit sparsity's crossings within 0.2-0.7.
SPARSITY_POWER = 4.0


@dataclass
class InputConfig(Config):
    """What to measure. ``p`` set: PPL-p% per method; ``p=None``: the fixed ``cett`` and ``sparsity``."""

    methods: tuple[str, ...] = METHODS
    p: float | None = 1.0
    cett: float = 0.1  # fixed setting of the CETT method (p=None)
    sparsity: float = 0.4  # fixed input sparsity of the TEAL methods (p=None)
    kinds: tuple[str, ...] = KINDS
    tolerance: float = 2e-3
    max_sparse_passes: int = 8
    start_cett: float = 0.05
    start_sparsity: float = 0.2
    batch_size: int = 4
    anchors: int = 5
    bytes_per_weight: float = 4.0  # float32; 2 for fp16, about 0.56 for Q4_1
    greedy_step: float = 0.02  # block sparsity added per greedy step
    greedy_max: float = 0.9
    greedy_sequences: int = 4  # calibration sequences (the first ones of the data)

    def __post_init__(self) -> None:
        self.methods, self.kinds = tuple(self.methods), tuple(self.kinds)
        super().__post_init__()

    def validate(self) -> None:
        self.check([
            (bool(self.methods) and all(m in METHODS for m in self.methods), "methods",
             f"must be some of {', '.join(METHODS)}"),
            (self.p is None or 0 < self.p <= 100, "p", "must be in (0, 100] or None"),
            (0 <= self.cett <= 1, "cett", "must be in [0, 1]"),
            (0 <= self.sparsity < 1, "sparsity", "must be in [0, 1)"),
            (all(k in KINDS for k in self.kinds) and bool(self.kinds), "kinds", f"must be some of {', '.join(KINDS)}"),
            (math.isfinite(self.tolerance) and self.tolerance > 0, "tolerance", "must be a finite number > 0"),
            (self.max_sparse_passes >= 2, "max_sparse_passes", "must be >= 2"),
            (0 < self.start_cett < 1 and 0 < self.start_sparsity < 1, "start_cett", "starts must be in (0, 1)"),
            (self.batch_size >= 1 and self.anchors >= 1, "batch_size", "batch_size and anchors must be >= 1"),
            (self.bytes_per_weight > 0, "bytes_per_weight", "must be > 0"),
            (self.greedy_sequences >= 1, "greedy_sequences", "must be >= 1"),
        ])


@dataclass
class InputEvaluation:
    """One sparse pass at a method's setting: its losses and what it kept (``capture.activity.ActivityCounter``: per
    projection, and per position weighted by output rows, the share of projection weights read)."""

    setting: Setting
    losses: SequenceLosses
    activity: ActivityCounter

    @property
    def kept_share(self) -> list[float]:
        """Per projection, the share of its inputs kept."""
        return self.activity.layer_ratios()


def other_weight_count(model, projections: list[Projection]) -> int:
    """Weights a decode step reads outside the projections: the output head, norms, one embedding row."""
    skip = {id(p.module.weight) for p in projections}
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    total = embedding.shape[1]  # one row per token
    if head is not None and head.weight is embedding:
        total += embedding.numel()  # tied: the full table is read as the head
    skip.add(id(embedding))
    seen = set()
    for param in model.parameters():
        if id(param) in skip or id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
    return total


class InputMeasurement(TargetMeasurement):
    """Projection inputs of a model over its evaluation data: the dense statistics pass, and sparse passes at
    method settings on demand, sharded over processes like every target's (``targets.engine``)."""

    def __init__(self, model, data: EvalData, config: InputConfig, projections: list[Projection] | None = None,
                 progress: bool = False):
        super().__init__(PROJECTION_INPUTS, model, data, config.batch_size, projections, progress=progress,
                         bars=False, kinds=config.kinds)
        self.config = config
        self.stats = InputStatistics(self.projections, anchors=config.anchors)
        self._greedy: GreedyPath | None = None
        self.other_weights = other_weight_count(model, self.projections)

    @property
    def projections(self) -> list[Projection]:
        return self.units

    def dense(self) -> None:
        """The dense pass: losses and every projection's statistics (once)."""
        if self.dense_losses is not None:
            return
        self.place_from_start(self.spec.observe(self.projections, self.stats.place), self.batch_size)
        self.dense_losses = self.run_pass([self.spec.observe(self.projections, self.stats.observe)], "dense pass")
        self.stats.reduce(all_reduce)

    def greedy(self) -> GreedyPath:
        if self._greedy is None:
            self.dense()
            ids = self.data.input_ids[: self.config.greedy_sequences]
            self._greedy = greedy_path(self.model, self.projections, self.stats, ids,
                                       step=self.config.greedy_step, max_sparsity=self.config.greedy_max,
                                       progress=self.progress)
        return self._greedy

    def setting(self, method: str, value: float) -> Setting:
        self.dense()
        if method == "cett":
            return cett_setting(self.stats, value)
        if method == "teal-uniform":
            return uniform_setting(self.stats, value)
        if method == "teal-greedy":
            return greedy_setting(self.stats, self.greedy(), value)
        raise ConfigError(f"unknown input-sparsity method {method!r}; choose from {', '.join(METHODS)}")

    def evaluate(self, setting: Setting) -> InputEvaluation:
        """A sparse pass zeroing the inputs ``setting`` drops, what it keeps counted (``counter``)."""
        activity = self.counter()

        def sparsify(p: Projection, x: torch.Tensor) -> torch.Tensor:
            keep = keep_mask(x, setting.thresholds[p.index], None if setting.norms is None else setting.norms[p.index])
            activity.add(p, keep)
            return x * keep

        losses = self.run_pass([self.spec.attach(self.projections, sparsify)], "sparse pass")
        activity.reduce(all_reduce)
        return InputEvaluation(setting, losses, activity)

    def kept_interval(self, evaluation: InputEvaluation, level: float = 0.9, samples: int = 1000,
                      seed: int = 0) -> dict | None:
        """The interval of the weighted kept share, the bytes ratio and the PPL ratio of one pass at a fixed
        setting, resampled as every answer's interval (``TargetMeasurement.pass_interval``); None with fewer
        blocks of tokens than it needs."""
        iv = self.pass_interval(evaluation, level, samples, seed)
        if iv is None:
            return None
        iv["method"] = "expanded percentile bootstrap over evaluation sequences at the calibrated input CETT"
        return self._kept_and_bytes(iv)

    def _kept_and_bytes(self, iv: dict) -> dict:
        """An interval of the weighted kept share (the resampling's activation ratio) and of the bytes ratio,
        affine in it (dense parts are read in full)."""
        if "activation_ratio" not in iv:  # units not counted per position (``TargetMeasurement.answered``)
            return iv
        projected = float(sum(p.parameters for p in self.projections))
        iv["kept_share"] = kept = iv.pop("activation_ratio")
        iv["bytes_ratio"] = [(k * projected + self.other_weights) / (projected + self.other_weights) for k in kept]
        return iv

    def bytes_per_token(self, kept_share: list[float] | None = None) -> float:
        """Weight bytes a batch-1 decode step reads; ``kept_share=None``: the dense model."""
        shares = kept_share or [1.0] * len(self.projections)
        projected = sum(s * p.parameters for s, p in zip(shares, self.projections))
        return (projected + self.other_weights) * self.config.bytes_per_weight

    def weighted_kept(self, evaluation: InputEvaluation) -> float:
        """The parameter-weighted kept share: the share of projection weights a pass read."""
        sizes = np.array([p.parameters for p in self.projections], dtype=np.float64)
        return float(np.dot(evaluation.kept_share, sizes) / sizes.sum())

    def method_result(self, evaluation: InputEvaluation, parameter: str,
                      searched: list[InputEvaluation] = ()) -> MethodResult:
        """``evaluation``'s result row, with the passes ``searched`` as its search."""
        s = evaluation.setting
        rows = [ProjectionResult(p.name, p.block, p.kind, p.in_features, p.out_features, float(t), float(k),
                                 None if s.sparsities is None else float(s.sparsities[p.index]))
                for p, t, k in zip(self.projections, s.thresholds, evaluation.kept_share)]
        used = self.bytes_per_token(evaluation.kept_share)
        search = [{"value": float(e.setting.value), "ppl_ratio": self.ppl_ratio(e), "kept_share": self.weighted_kept(e)}
                  for e in searched]
        return MethodResult(
            method=s.method, parameter=parameter, value=float(s.value), rule=s.rule,
            sparse_ppl=evaluation.losses.ppl, ppl_ratio=self.ppl_ratio(evaluation),
            kept_share=self.weighted_kept(evaluation), bytes_per_token=used,
            bytes_ratio=used / self.bytes_per_token(), projections=rows, search=search)

    def fixed(self, method: str, value: float) -> MethodResult:
        evaluation = self.evaluate(self.setting(method, value))
        return self.method_result(evaluation, _parameter(method), [evaluation])

    def solve(self, method: str, p: float) -> MethodResult:
        """PPL-p% of ``method``: the engine's trend search over its parameter, converged only when a pass at
        the answer confirms it (``metrics.pplp_answer``), finished by the engine (``TrendAnswer``: the answer,
        the pass at it, the interval, the warnings). A search with no answer reports none:
        ``solution.no_answer`` says why."""
        self.dense()
        cfg, parameter = self.config, _parameter(method)
        power, hi = (1.0, C_MAX) if method == "cett" else (SPARSITY_POWER, MAX_SPARSITY)

        def value_of(c: float) -> float:
            return min(c ** (1 / power), hi)

        found = self.trend_search(
            lambda c: self.evaluate(self.setting(method, value_of(c))), p=p, tolerance=cfg.tolerance,
            max_passes=cfg.max_sparse_passes, start=cfg.start_cett if power == 1.0 else cfg.start_sparsity ** power,
            what=f"inputs {method}", label=lambda c: f"{parameter} {value_of(c):.4g}")
        passes, outcome = found.passes, found.outcome
        if found.no_answer:  # the last pass's measurements under the search, no value
            result = self.method_result(passes[-1], parameter, passes)
            result.solution, result.warnings = Solution.of(found.no_answer_solution("value")), found.warnings
            return result
        value, at = value_of(found.cett), found.pass_at(found.cett)
        if at is None:  # not converged and no pass there: one more, so the numbers reported are measured at the answer
            passes.append(self.evaluate(self.setting(method, value)))
        evaluation = passes[-1 if at is None else at]
        result = self.method_result(evaluation, parameter, passes)
        interval = found.interval
        if interval is not None:
            interval["value"] = [value_of(c) for c in interval.pop("cett")]
            interval = self._kept_and_bytes(interval)
        result.solution = Solution.of({
            "method": "trend", "value": value, "standard_error": outcome.fit.se_ratio, "misfit": outcome.fit.misfit,
            "converged": outcome.converged, "sparse_passes": len(passes),
            "pass_at_answer": float(evaluation.setting.value), "confirmation": outcome.confirmation,
            "interval": interval})
        result.warnings = found.warnings
        return result


def _parameter(method: str) -> str:
    return "cett" if method == "cett" else "sparsity"


def measure_inputs(model, data, config: InputConfig | None = None, *, tokenizer=None,
                   model_name: str = "in-memory", projections: list[Projection] | None = None,
                   progress: bool = False, on_method: Callable[[InputSparsityResult], None] | None = None,
                   ) -> InputSparsityResult:
    """Input sparsity of every projection of ``model`` over ``data`` for each of ``config.methods``.
    ``data``: ``EvalData``, token ids, or texts (with ``tokenizer``); ``on_method(result)``: called with the
    methods finished so far after each one (to keep partial results)."""
    config = config or InputConfig()
    data = as_eval_data(data, tokenizer)
    started = time.perf_counter()
    m = InputMeasurement(model, data, config, projections, progress=progress)
    methods: list[MethodResult] = []

    def result() -> InputSparsityResult:
        return InputSparsityResult(
            model=model_name, p=config.p, dense_ppl=m.dense_losses.ppl, bytes_per_weight=config.bytes_per_weight,
            dense_bytes_per_token=m.bytes_per_token(), other_bytes_per_token=m.other_weights * config.bytes_per_weight,
            methods=list(methods), n_tokens=data.n_tokens, n_sequences=data.n_sequences, seq_len=data.seq_len,
            data_source=data.source, forward_passes=m.passes, seconds=time.perf_counter() - started,
            provenance=stamp({"inputs": asdict(config), "model": model_name}))

    with torch.no_grad():
        m.dense()
        for name in config.methods:
            methods.append(m.solve(name, config.p) if config.p is not None
                           else m.fixed(name, config.cett if name == "cett" else config.sparsity))
            if on_method is not None:
                on_method(result())
    return result()


__all__ = ["InputConfig", "InputEvaluation", "InputMeasurement", "METHODS", "measure_inputs", "other_weight_count"]

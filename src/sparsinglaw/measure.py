"""Measure activation sparsity of a causal LM: the Python API behind ``sparsinglaw measure``.

    from sparsinglaw import measure, MeasureConfig, load_documents
    config = MeasureConfig(metric="pplp", p=1.0, seq_len=256, max_tokens=4096)
    result = measure(model, load_documents("my.txt"), config, tokenizer=tokenizer)
    print(result.table()); result.save("result.json")

``MeasureConfig``'s fields are the CLI's options, with the same names and defaults. One dense pass gathers
everything that depends only on dense activations; each metric setting then costs one sparse pass."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass

from sparsinglaw import metrics
from sparsinglaw.capture.activity import ActivityCounter
from sparsinglaw.capture.passes import SequenceLosses
from sparsinglaw.config import Config
from sparsinglaw.data.batches import EvalData, as_eval_data
from sparsinglaw.distributed import all_reduce
from sparsinglaw.guardrails import measure_warnings
from sparsinglaw.metrics import kernels
from sparsinglaw.metrics.base import Applied
from sparsinglaw.metrics.cett import CETTCurves, auto_anchor_stride
from sparsinglaw.metrics.evaluation import Evaluation  # re-exported: its home is below the metrics
from sparsinglaw.models.activation_probe import PROBE_WINDOW
from sparsinglaw.provenance import stamp
from sparsinglaw.results import LayerResult, MeasureResult
from sparsinglaw.targets.engine import TargetMeasurement
from sparsinglaw.targets.ffn_neurons import FFN_NEURONS

SOLUTIONS = ("trend", "lowest-crossing")
log = logging.getLogger("sparsinglaw")


@dataclass
class MeasureConfig(Config):
    """What to measure and how. Fields are validated on creation (ConfigError names the field)."""

    metric: str = "pplp"  # pplp | cett | fat | topk | zero
    p: float = 1.0  # PPL-p%: allowed perplexity increase in percent
    cett: float = 0.2  # CETT target c in [0, 1]
    epsilon: float = 0.01  # FAT threshold on |s_i|
    ratio: float = 0.1  # Top-k share of neurons kept
    topk_scope: str = "token"  # rank per token, or across the whole layer tensor ("layer", published code)
    solution: str = "trend"  # PPL-p%: "trend" (where the fitted trend crosses) or "lowest-crossing"
    tolerance: float = 1e-3  # PPL-p%: trend's standard error at the answer (lowest-crossing: |ratio - target|)
    max_sparse_passes: int = 12  # PPL-p%: budget of sparse passes for the search
    start_cett: float = 0.05  # PPL-p%: first CETT tried
    seq_len: int = 256  # tokens per evaluation sequence when texts are packed (--seq-len)
    max_tokens: int = 4096  # evaluation tokens in total when texts are packed (--max-tokens)
    batch_size: int = 4  # sequences per forward
    level: float = 0.9  # PPL-p% bootstrap interval level (0 to skip; --level)
    n_boot: int = 1000  # PPL-p% bootstrap resamples (--n-boot)
    seed: int = 0
    anchors: int = 5  # exact CETT evaluations per layer in the dense pass (see metrics.cett)
    anchor_stride: int = 0  # exact CETT anchors on every k-th position (and each first one); 0: from the tokens
    detail_tokens: int = 0  # keep the per-token x per-layer activation map for this many tokens
    neuron_frequency: bool = False  # include per-neuron activation frequencies in the result
    dead_threshold: float = 1e-3  # a neuron active on fewer than this share of tokens is dead

    def validate(self) -> None:
        metrics.get_metric(self.metric)  # ConfigError for unknown names
        self.check([
            (0 < self.p <= 100, "p", "must be in (0, 100] (percent of perplexity increase)"),
            (self.solution in SOLUTIONS, "solution", f"must be one of {', '.join(SOLUTIONS)}"),
            (0.0 <= self.cett <= 1.0, "cett", "must be in [0, 1]"),
            (self.epsilon >= 0, "epsilon", "must be >= 0"),
            (0.0 < self.ratio <= 1.0, "ratio", "must be in (0, 1]"),
            (self.topk_scope in ("token", "layer"), "topk_scope", "must be 'token' or 'layer'"),
            (math.isfinite(self.tolerance) and self.tolerance > 0, "tolerance", "must be a finite number > 0"),
            (self.max_sparse_passes >= 2, "max_sparse_passes", "must be >= 2"),
            (0.0 < self.start_cett < 1.0, "start_cett", "must be in (0, 1)"),
            (self.seq_len >= 2, "seq_len", "must be >= 2 (one token to predict)"),
            (self.max_tokens >= self.seq_len, "max_tokens", f"is smaller than one sequence (seq_len={self.seq_len})"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (0.0 <= self.level < 1.0, "level", "must be in [0, 1)"),
            (self.n_boot >= 10, "n_boot", "must be >= 10"),
            (self.anchors >= 1, "anchors", "must be >= 1"),
            (self.anchor_stride >= 0, "anchor_stride", "must be >= 0 (0: chosen from the token count)"),
            (self.detail_tokens >= 0, "detail_tokens", "must be >= 0"),
            (0.0 <= self.dead_threshold < 1.0, "dead_threshold", "must be in [0, 1)"),
        ])

    def metric_value(self) -> float | None:
        parameter = metrics.get_metric(self.metric).parameter
        return getattr(self, parameter) if parameter else None

    @classmethod
    def upgrade(cls, data: dict) -> dict:
        """Files written before the fields took the CLI's names (``ci_level``, ``bootstrap_samples``)."""
        for old, new in RENAMED.items():
            if old in data:
                data.setdefault(new, data.pop(old))
        return data


RENAMED = {"ci_level": "level", "bootstrap_samples": "n_boot"}  # old MeasureConfig field -> the CLI's name


class Measurement(TargetMeasurement):
    """FFN neurons of a model over its evaluation data: the dense pass, and metric settings on demand."""

    def __init__(self, model, data: EvalData, config: MeasureConfig, *, layers=None, progress: bool = False):
        super().__init__(FFN_NEURONS, model, data, config.batch_size, layers, progress=progress)
        self.config = config
        self.dense_zero: ActivityCounter | None = None
        self.curves: CETTCurves | None = None
        # Keep per-sequence, per-neuron counts (intervals of the dead and live-neuron ratios, tracking); the
        # fused threshold kernel does not give them, so passes take the rule's mask instead.
        self.per_sequence_neurons = False

    @property
    def layers(self) -> list:
        return self.units

    def _counter(self) -> ActivityCounter:
        return self.counter(per_token=self.config.detail_tokens > 0, per_sequence_neurons=self.per_sequence_neurons)

    def _pass(self, callback, what: str, output_callback=None) -> SequenceLosses:
        """One pass with ``callback`` on every FFN (and ``output_callback`` after every down projection, see
        ``capture.hooks.attach``)."""
        hooks = [self.spec.attach(self.layers, callback)]
        if output_callback is not None:
            hooks.append(self.spec.observe(self.layers, output_callback))
        return self.run_pass(hooks, what)

    def dense(self, cett_curves: bool) -> None:
        """The dense pass: losses, exact-zero counts and (if asked) CETT statistics. Runs once, unless a
        later metric needs CETT statistics the first dense pass did not gather."""
        if self.dense_losses is not None and (self.curves is not None or not cett_curves):
            return
        curves = CETTCurves(self.layers, anchors=self.config.anchors,
                            anchor_stride=self.config.anchor_stride or auto_anchor_stride(self.data.n_tokens)) if cett_curves else None
        if curves is not None:
            self.place_from_start(self.spec.attach(self.layers, curves.place), 1)
        zero = self._counter()
        # CETT statistics need y = W_down h: taken from the down projection's output where the adapter can
        # hook it (one matmul per FFN saved), else recomputed from h.
        after_down = curves is not None and all(layer.observes_output for layer in self.layers)

        def observe(layer, h, s):
            zero.add(layer, s != 0)
            if curves is not None and not after_down:
                curves.observe(layer, h, s)

        self.dense_losses = self._pass(observe, "dense pass", curves.observe_output if after_down else None)
        zero.reduce(all_reduce)
        if curves is not None:
            curves.reduce(all_reduce)
        self.dense_zero, self.curves = zero, curves or self.curves

    def evaluate(self, applied: Applied) -> Evaluation:
        """A sparse pass with ``applied``'s rule zeroing inactive neurons."""
        if not applied.changes_output:
            self.dense(cett_curves=False)
            return Evaluation(applied, self.dense_losses, self.dense_zero)
        activity = self._counter()
        by_magnitude = (applied.magnitude_norms is not None and applied.thresholds is not None
                        and not self.per_sequence_neurons)

        def sparsify(layer, h, s):
            if by_magnitude:  # one C kernel call: zero h in place, count per token and per neuron
                i = layer.index
                per_token = kernels.threshold_apply(h, applied.magnitude_norms[i], applied.thresholds[i],
                                                    activity.neuron_active[i])
                if per_token is not None:
                    activity.add_token_counts(layer, per_token)
                    return h
            keep = applied.rule(layer, h, s).to(h.dtype)
            activity.add(layer, keep)
            return h * keep

        losses = self._pass(sparsify, "sparse pass")
        activity.reduce(all_reduce)
        return Evaluation(applied, losses, activity)

    def at(self, metric_name: str, value: float | None) -> Evaluation:
        metric = metrics.get_metric(metric_name)
        self.dense(cett_curves=metric.needs_cett_curves)
        applied = metric.apply(value, curves=self.curves, layers=self.layers, **metric.options(self.config))
        return self.evaluate(applied)


def measure(model, data, config: MeasureConfig | None = None, *, tokenizer=None,
            model_name: str = "in-memory", layers=None, progress: bool = False) -> MeasureResult:
    """Measure ``config.metric`` on ``model`` over ``data``; see ``MeasureConfig`` for the settings.

    ``data``: ``EvalData``, token ids ``(n_sequences, seq_len)``, or texts (with ``tokenizer``; packed into
    ``config.seq_len``-token sequences up to ``config.max_tokens`` tokens, 256 and 4,096 as in the CLI)."""
    config = config or MeasureConfig()
    data = as_eval_data(data, tokenizer, seq_len=config.seq_len, max_tokens=config.max_tokens)
    started = time.perf_counter()
    measurement = Measurement(model, data, config, layers=layers, progress=progress)
    solved = metrics.get_metric(config.metric).solve(measurement)  # PPL-p% searches; the others run once
    result = build_result(measurement, solved.evaluation, model_name=model_name, tokenizer=tokenizer)
    solved.finish(result, measurement)
    # Results that cannot be right; the probe reuses the dense pass's losses for the model's own activation.
    result.warnings.extend(measure_warnings(result, model, data.input_ids, _probe_ppl(measurement)))
    result.seconds = time.perf_counter() - started
    return result


def _probe_ppl(measurement: Measurement) -> float | None:
    """The dense perplexity on the activation probe's window, read from the dense pass (a causal LM's losses
    there are the probe's own forward's): one forward of the probe saved."""
    losses = measurement.dense_losses
    if losses is None or losses.token_nll is None:
        return None
    rows, positions = PROBE_WINDOW
    nll = losses.token_nll[rows, positions][:, :-1]  # the window's last position predicts a token beyond it
    return math.exp(float(nll.mean())) if nll.numel() else None


def build_result(measurement: Measurement, evaluation: Evaluation, *, model_name: str, tokenizer=None) -> MeasureResult:
    """Assemble the typed result of one evaluation (per-layer table, dead neurons, provenance)."""
    cfg, data, activity = measurement.config, measurement.data, evaluation.activity
    dead, dead_per_layer = activity.dead_ratio(cfg.dead_threshold)
    thresholds = evaluation.applied.thresholds or [None] * len(measurement.layers)
    layers = [
        LayerResult(name=layer.name, block=layer.block, width=layer.width, activation_ratio=ratio,
                    dead_neuron_ratio=dead_layer, threshold=t, expert=layer.expert)
        for layer, ratio, dead_layer, t in zip(measurement.layers, activity.layer_ratios(), dead_per_layer, thresholds)
    ]
    dense_ppl = measurement.dense_losses.ppl
    return MeasureResult(
        model=model_name, metric=cfg.metric, setting=dict(evaluation.applied.setting),
        dense_ppl=dense_ppl, sparse_ppl=evaluation.losses.ppl, ppl_ratio=measurement.ppl_ratio(evaluation),
        activation_ratio=activity.activation_ratio, threshold_rule=evaluation.applied.threshold_rule,
        layers=layers, dead_neuron_ratio=dead, live_activation_ratio=activity.live_activation_ratio(cfg.dead_threshold),
        never_active_ratio=measurement.dense_zero.never_active_ratio() if measurement.dense_zero else None,
        n_tokens=data.n_tokens, n_sequences=data.n_sequences,
        seq_len=data.seq_len, data_source=data.source, forward_passes=measurement.passes,
        token_detail=_token_detail(activity, data, cfg.detail_tokens, tokenizer),
        neuron_frequency=[f.tolist() for f in activity.neuron_frequency()] if cfg.neuron_frequency else None,
        provenance=stamp({"measure": asdict(cfg), "model": model_name}),
    )


def _token_detail(activity: ActivityCounter, data: EvalData, n: int, tokenizer) -> dict | None:
    if n <= 0 or activity.token_layer is None:
        return None
    ids = data.input_ids.reshape(-1)[:n].tolist()
    ratios = activity.token_layer.reshape(-1, activity.token_layer.shape[-1])[:n]
    if tokenizer is not None:
        tokens = [tokenizer.decode([i]) for i in ids]
    else:
        tokens = [str(i) for i in ids]
    return {"tokens": tokens, "token_ids": ids, "layer_ratios": ratios.tolist(),
            "token_ratio": ratios.mean(dim=1).tolist()}


def sweep(model, data: EvalData, values: dict[str, list[float]], config: MeasureConfig | None = None, *,
          layers=None, progress: bool = False, on_point=None) -> list[dict]:
    """Pareto sweep: (activation ratio, PPL ratio) for each metric at each setting, one dense pass shared.
    ``progress``: also a line per point (count, setting, ratios, points left); ``on_point(points)`` is called
    with the points so far after each one (to keep partial results)."""
    config = config or MeasureConfig()
    measurement = Measurement(model, data, config, layers=layers, progress=progress)
    # One dense pass for all metrics: gather CETT statistics up front if any metric needs them.
    measurement.dense(cett_curves=any(metrics.get_metric(name).needs_cett_curves for name in values))
    points: list[dict] = []
    total = sum(len(settings) or 1 for settings in values.values())
    for name, settings in values.items():
        for value in settings or [None]:
            evaluation = measurement.at(name, value)
            points.append({
                "metric": name, "setting": evaluation.applied.setting, "value": value,
                "activation_ratio": evaluation.activity.activation_ratio,
                "ppl_ratio": measurement.ppl_ratio(evaluation),
            })
            if progress:
                log.info("pareto: point %d of %d, %s %s -> activation ratio %.4f, PPL ratio %.4f; %d left",
                         len(points), total, name, "-" if value is None else f"{value:.4g}",
                         points[-1]["activation_ratio"], points[-1]["ppl_ratio"], total - len(points))
            if on_point is not None:
                on_point(points)
    return points


def default_sweep(metric_names: list[str] | None = None) -> dict[str, list[float]]:
    """Each metric's default Pareto settings (the zero count is a single point)."""
    names = metric_names or ["topk", "fat", "cett", "zero"]
    return {name: list(metrics.get_metric(name).sweep_values) for name in names}


__all__ = ["MeasureConfig", "Measurement", "default_sweep", "measure", "sweep"]

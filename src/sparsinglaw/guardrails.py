"""Statistical guardrails: results that run fine yet cannot be right, each turned into a one-line warning.

Pure functions (lines from a result, no logging): ``measure_warnings`` (weights that look like another
activation than the one run, dense perplexity above the vocabulary size, ``zero`` on an activation without
exact zeros, a PPL ratio above 2, most neurons dead), ``fit_warnings`` (parameters at a bound, estimates
outside their interval), ``scale_warnings`` (a scale comparison mixing activations)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

# Activations that output exact zeros, for which ``--metric zero`` counts something meaningful.
RELU_FAMILY = frozenset({"relu", "relu2", "relu6", "relu_squared", "squared_relu", "reglu", "fatrelu",
                         "dyrelu", "shifted_relu"})
MAX_PPL_RATIO = 2.0
MAX_DEAD_SHARE = 0.5
_CONFIG_ACTIVATION_KEYS = ("hidden_act", "hidden_activation", "activation_function", "ffn_act")


def model_activation(model: Any) -> str | None:
    """The activation a transformers model's config names (lower case), or None when it names none."""
    config = getattr(model, "config", None)
    for key in _CONFIG_ACTIVATION_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, str) and value:
            return value.lower()
    return None


def _vocab_size(model: Any) -> int | None:
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    return int(size) if isinstance(size, int) and size > 0 else None


def measure_warnings(result: Any, model: Any = None, probe_ids: Any = None, probe_ppl: float | None = None) -> list[str]:
    """One line per implausible aspect of a ``MeasureResult``; [] when all is well. ``model`` adds the checks
    that need its vocabulary size and activation, ``probe_ids`` the activation probe (``probe_ppl``: the
    model's own dense perplexity on the probe's window, when the measurement has it)."""
    lines: list[str] = []
    if model is not None and probe_ids is not None:
        # here: the probe runs forwards (torch); the fits' guardrails never need it
        from sparsinglaw.models.activation_probe import activation_warnings

        lines += activation_warnings(model, model_activation(model), probe_ids, probe_ppl)
    vocab = _vocab_size(model)
    dense = float(result.dense_ppl)
    if not math.isfinite(dense):
        lines.append(f"dense perplexity is {dense}: the model does not run correctly on this data")
    elif vocab and dense > vocab:
        lines.append(f"dense perplexity {dense:.4g} is above the vocabulary size {vocab:,} (worse than uniform "
                     f"guessing): the model is not running as trained; check --hidden-act and the model file")
    activation = model_activation(model)
    if result.metric == "zero" and activation and activation not in RELU_FAMILY:
        lines.append(f"--metric zero counts exact zeros, but the activation is {activation}, which is not "
                     f"ReLU-family: nearly every neuron counts as active; use --metric pplp, cett or fat")
    ratio = float(result.ppl_ratio)
    if math.isfinite(ratio) and ratio > MAX_PPL_RATIO:
        lines.append(f"PPL ratio {ratio:.3g} is above {MAX_PPL_RATIO:g}: the sparsified model is far worse than "
                     f"the dense one, so its activation ratio says little")
    dead = float(result.dead_neuron_ratio)
    if dead > MAX_DEAD_SHARE:
        lines.append(f"{dead:.0%} of the neurons are dead (active on < 0.1% of tokens): an undertrained or "
                     f"broken model, or too little evaluation data")
    return lines


def _near(value: float, bound: float) -> bool:
    if not math.isfinite(bound):
        return False
    return abs(value - bound) <= 1e-9 * max(1.0, abs(bound))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _bound_lines(fit_result: Any) -> list[str]:
    try:
        family = fit_result.family
        lower, upper = family.lower, family.upper
        names = family.param_names
    except Exception:  # an unregistered law: no box to compare with
        return []
    lines = []
    for name, lo, hi in zip(names, lower, upper, strict=False):
        value = fit_result.params.get(name)
        if value is None or not math.isfinite(value):
            continue
        side = "lower" if _near(value, lo) else "upper" if _near(value, hi) else None
        if side:
            bound = lo if side == "lower" else hi
            lines.append(f"{fit_result.curve} {fit_result.law}: {name}={_fmt(value)} sits at its {side} bound "
                         f"{_fmt(bound)}; the data do not determine it")
    return lines


def _interval_lines(fit_result: Any) -> list[str]:
    lines = []
    for name, interval in (fit_result.intervals or {}).items():
        value = fit_result.params.get(name)
        if value is None or not (math.isfinite(value) and math.isfinite(interval.low) and math.isfinite(interval.high)):
            continue
        if not interval.low <= value <= interval.high:
            lines.append(f"{fit_result.curve} {fit_result.law}: {name}={_fmt(value)} lies outside its own "
                         f"{interval.level:.0%} interval [{_fmt(interval.low)}, {_fmt(interval.high)}]; the "
                         f"fit is unstable, treat {name} as unknown")
    limit = getattr(fit_result, "limit", None)
    iv = getattr(limit, "interval", None)
    if limit is not None and iv is not None and limit.value is not None and math.isfinite(limit.value):
        if not iv.low <= limit.value <= iv.high:
            lines.append(f"{fit_result.curve} {fit_result.law}: the limit {_fmt(limit.value)} lies outside its own "
                         f"interval [{_fmt(iv.low)}, {_fmt(iv.high)}]")
    return lines


def fit_warnings(fit_result: Any) -> list[str]:
    """One line per parameter of a ``laws.FitResult`` at a bound of its box, or outside its own interval."""
    return _bound_lines(fit_result) + _interval_lines(fit_result)


def scale_warnings(curves: Iterable[Any]) -> list[str]:
    """One line when the curves of a scale comparison (``fit --scale``) have different activations. Takes
    ``laws.Curve`` objects (their ``activation``) or activation names; unknown activations are ignored."""
    named: dict[str, list[str]] = {}
    for curve in curves:
        activation = curve if isinstance(curve, str) or curve is None else getattr(curve, "activation", None)
        if activation:
            label = curve if isinstance(curve, str) else getattr(curve, "name", activation)
            named.setdefault(activation.lower(), []).append(label)
    if len(named) < 2:
        return []
    parts = "; ".join(f"{act}: {', '.join(labels)}" for act, labels in sorted(named.items()))
    return [f"--scale compares curves of different activations ({parts}); their limits and speeds differ by "
            f"activation, not by size: compare one activation at a time"]


def unreliable_params(fit_result: Any) -> dict[str, str]:
    """Parameter name -> why its fitted value is no finding ("at its lower bound", "at its upper bound",
    "outside its own interval"), for tables that must flag such a number instead of printing it."""
    flags: dict[str, str] = {}
    family = getattr(fit_result, "family", None)
    boxes = zip(family.param_names, family.lower, family.upper, strict=False) if family is not None else []
    for name, lo, hi in boxes:
        value = fit_result.params.get(name)
        if value is not None and math.isfinite(value) and (_near(value, lo) or _near(value, hi)):
            flags[name] = f"at its {'lower' if _near(value, lo) else 'upper'} bound"
    for name, interval in (fit_result.intervals or {}).items():
        value = fit_result.params.get(name)
        if name not in flags and value is not None and math.isfinite(value) and not interval.low <= value <= interval.high:
            flags[name] = "outside its own interval"
    return flags

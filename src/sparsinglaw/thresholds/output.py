"""Per-layer CETT thresholds (kind ``output``) as a versioned file, and applying them to a model.

Format (JSON)::

    {
      "format": "sparsinglaw.thresholds", "kind": "output", "version": 1,
      "rule": "zero h_i where |h_i| * ||W_down[:, i]|| < t_l",
      "model": {"name": str, "model_type": str, "n_ffn": int, "widths": [d_f per FFN]},
      "metric": {"name": "pplp" | "cett", "setting": {...}, "activation_ratio": float, "ppl_ratio": float},
      "calibration": {"data": str, "n_tokens": int, "seq_len": int},
      "layers": [{"name": str, "block": int, "expert": int | null, "width": int, "threshold": float}],
      "provenance": {...}
    }

Files without a ``kind`` are output files; the other kinds are in ``thresholds.inputs``, and all of them
follow ``thresholds.kinds.ThresholdsKind``. ``Thresholds.average`` / ``calibrate_averaged`` give the
per-layer mean over calibration batches (docs/paper.md section 2)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from sparsinglaw import export
from sparsinglaw.capture.hooks import attach
from sparsinglaw.data.batches import EvalData
from sparsinglaw.errors import ConfigError, ModelError, NoAnswerError
from sparsinglaw.measure import measure
from sparsinglaw.metrics.cett import cett_rule
from sparsinglaw.models import find_ffn_layers
from sparsinglaw.results import MeasureResult
from sparsinglaw.sparse.convert import sparsify as sparsify_ffns
from sparsinglaw.sparse.counts import KeptCounts, ModuleCounts
from sparsinglaw.thresholds.kinds import (
    FORMAT,
    AppliedThresholds,
    ThresholdsKind,
    check_threshold_values,
    load_thresholds,
    register_kind,
)

VERSION = 1
RULE = "zero h_i where |h_i| * ||W_down[:, i]|| < t_l"


@register_kind
@dataclass
class Thresholds(ThresholdsKind):
    """Per-FFN thresholds ``t_l`` with the identity of the model and the measurement that produced them."""

    layers: list[dict[str, Any]]  # name, block, expert, width, threshold
    model: dict[str, Any]
    metric: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    rule: str = RULE
    format: str = FORMAT
    kind: str = "output"
    version: int = VERSION
    sparse_modules: ClassVar[str] = "ffn"

    @property
    def values(self) -> list[float]:
        return [float(layer["threshold"]) for layer in self.layers]

    @classmethod
    def from_result(cls, result: MeasureResult, model_type: str | None = None) -> Thresholds:
        """Thresholds of a CETT or PPL-p% measurement (refused for a PPL-p% search that has no answer)."""
        reason = result.solution and result.solution.no_answer
        if reason:
            raise NoAnswerError(f"this PPL-p% measurement has no answer ({reason}); there are no thresholds to "
                                "write: measure again with another --p or more evaluation tokens")
        if any(layer.threshold is None for layer in result.layers):
            raise ConfigError(f"a {result.metric} result has no per-layer CETT thresholds; measure with --metric pplp or cett")
        layers = [{"name": x.name, "block": x.block, "expert": x.expert, "width": x.width, "threshold": x.threshold}
                  for x in result.layers]
        return cls(
            layers=layers,
            model={"name": result.model, "model_type": model_type, "n_ffn": len(layers), "widths": [x.width for x in result.layers]},
            metric={"name": result.metric, "setting": result.setting, "activation_ratio": result.activation_ratio,
                    "ppl_ratio": result.ppl_ratio},
            calibration={"data": result.data_source, "n_tokens": result.n_tokens, "seq_len": result.seq_len},
            provenance=result.provenance,
        )

    @classmethod
    def for_model(cls, model, values: Sequence[float]) -> Thresholds:
        """Bare per-FFN values as thresholds of ``model``'s FFNs (``ConfigError`` naming an impossible value,
        ``ModelError`` when the counts differ)."""
        values = check_threshold_values([{"threshold": v} for v in values])
        layers = find_ffn_layers(model)
        if len(values) != len(layers):
            raise ModelError(f"{len(values)} thresholds for a model with {len(layers)} FFNs")
        rows = [{"name": x.name, "block": x.block, "expert": x.expert, "width": x.width, "threshold": float(v)}
                for x, v in zip(layers, values)]
        return cls(layers=rows, model={"name": "in-memory", "n_ffn": len(rows), "widths": [x.width for x in layers]})

    @classmethod
    def average(cls, items: Sequence[Thresholds | MeasureResult]) -> Thresholds:
        """Per-layer mean of thresholds calibrated on separate batches of the same model."""
        items = [x if isinstance(x, Thresholds) else cls.from_result(x) for x in items]
        if not items:
            raise ConfigError("no thresholds to average")
        first = items[0]
        widths = [x["width"] for x in first.layers]
        for other in items[1:]:
            if [x["width"] for x in other.layers] != widths:
                raise ModelError("cannot average thresholds of models with different FFNs (count or widths differ)")
        layers = [dict(layer, threshold=sum(x.values[i] for x in items) / len(items))
                  for i, layer in enumerate(first.layers)]
        per_batch = [{k: x.metric.get(k) for k in ("setting", "activation_ratio", "ppl_ratio")} for x in items]
        metric = {"name": first.metric.get("name"), "setting": first.metric.get("setting"),
                  "activation_ratio": _mean([b["activation_ratio"] for b in per_batch]),
                  "ppl_ratio": _mean([b["ppl_ratio"] for b in per_batch]),
                  "averaged_over": len(items), "per_batch": per_batch}
        tokens = [x.calibration.get("n_tokens") for x in items]
        calibration = dict(first.calibration, n_tokens=sum(tokens) if all(t is not None for t in tokens) else None,
                           batches=len(items))
        return cls(layers=layers, model=dict(first.model), metric=metric, calibration=calibration,
                   provenance=first.provenance)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path = "thresholds") -> Thresholds:
        """An output thresholds document (``kind`` "output" or absent: files written before kinds existed)."""
        if data.get("version") != VERSION:
            raise ConfigError(f"{source} is thresholds format version {data.get('version')}; this sparsinglaw reads "
                              f"{VERSION}: measure again with 'sparsinglaw measure --output'")
        check_threshold_values(data.get("layers"), source)
        known = {k: data[k] for k in ("layers", "model", "metric", "calibration", "provenance", "rule") if k in data}
        return cls(**known)

    @classmethod
    def load(cls, path: str | Path) -> Thresholds:
        """An output thresholds file, or a measurement result JSON (its thresholds are taken); an input or
        combined thresholds file is refused (``load_thresholds`` reads every kind)."""
        loaded = load_thresholds(path)
        if not isinstance(loaded, cls):
            raise ConfigError(f"{path} holds {loaded.kind} thresholds; this command applies output (FFN neuron) "
                              "thresholds only: pass a 'sparsinglaw measure --output' file")
        return loaded

    def check_compatible(self, ffn_layers) -> None:
        """Refuse thresholds measured on a model with other FFNs (count or widths differ)."""
        widths = [layer.width for layer in ffn_layers]
        if len(widths) != len(self.layers) or widths != [x["width"] for x in self.layers]:
            raise ModelError(
                f"thresholds are for {len(self.layers)} FFNs of widths {sorted(set(x['width'] for x in self.layers))} "
                f"({self.model.get('name')}), this model has {len(widths)} of widths {sorted(set(widths))}; "
                "measure thresholds on this model"
            )

    @classmethod
    def from_result_document(cls, data: dict[str, Any], source: str | Path) -> Thresholds | None:
        """A 'sparsinglaw measure --output' result's thresholds (None for other documents)."""
        if "layers" not in data or "metric" not in data:
            return None
        try:
            loaded = cls.from_result(MeasureResult.from_dict(data))
        except TypeError as err:  # fields missing or of the wrong shape
            raise ConfigError(f"{source} is not a complete measurement result ({err})") from None
        check_threshold_values(loaded.layers, source)
        return loaded

    def checked_values(self, ffn_layers) -> list[float]:
        """The values, refused for another model's FFNs (``check_compatible``) or an impossible value."""
        self.check_compatible(ffn_layers)
        return check_threshold_values(self.layers)

    def check(self, model) -> None:
        self.check_compatible(find_ffn_layers(model))

    def install_hooks(self, model, stack: ExitStack) -> tuple[KeptCounts, None]:
        layers = find_ffn_layers(model)
        rule = cett_rule(self.checked_values(layers), [layer.down_column_norms() for layer in layers])
        stats = KeptCounts(len(layers))

        def mask(layer, h, s):
            return stats.masked(layer.index, h, rule(layer, h, s).to(h.dtype))

        stack.enter_context(attach(layers, mask))
        return stats, None

    def describe(self) -> dict[str, Any]:
        return self.entries("layers")

    def export_spec(self, model) -> dict[str, Any]:
        return export.output_spec(model, self, RULE)

    def sparsify(self, model, *, policy=None) -> AppliedThresholds:
        """Sparse FFN modules (``sparsinglaw.sparse``)."""
        handle = sparsify_ffns(model, self, policy=policy)
        return AppliedThresholds.swapped(handle, ModuleCounts(handle))


def _mean(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(numbers) / len(numbers) if len(numbers) == len(values) and numbers else None


def calibrate_averaged(model, data, config, n_batches: int, *, tokenizer=None,
                       model_name: str = "in-memory", model_type: str | None = None) -> Thresholds:
    """Measure ``config`` (a ``MeasureConfig`` with a CETT or PPL-p% metric) on each of ``n_batches``
    consecutive groups of ``data``'s sequences and average the per-layer thresholds."""
    if not 1 <= n_batches <= data.n_sequences:
        raise ConfigError(f"n_batches must be in [1, {data.n_sequences}] (the number of sequences), got {n_batches}")
    chunks = torch.tensor_split(data.input_ids, n_batches)
    results = [measure(model, EvalData(input_ids=ids, source=data.source), config, tokenizer=tokenizer,
                       model_name=model_name) for ids in chunks]
    return Thresholds.average([Thresholds.from_result(r, model_type) for r in results])


def apply_thresholds(model, thresholds: ThresholdsKind | Sequence[float]) -> AppliedThresholds:
    """Install ``thresholds`` on ``model`` and return the handle that removes them. Output thresholds
    (``Thresholds`` or a list of per-FFN floats) zero ``h_i`` where ``|h_i| * ||W_down[:, i]|| < t_l`` in
    every FFN; input thresholds zero each listed projection's inputs below its threshold; combined, both.
    ``with apply_thresholds(model, t) as stats:`` keeps them for the block only."""
    if not isinstance(thresholds, ThresholdsKind):
        thresholds = Thresholds.for_model(model, list(thresholds))
    return thresholds.install(model)

"""Input thresholds (one per projection, kind ``input``) and combined ones (kind ``combined``), and
installing them on a model.

Format (JSON)::

    {
      "format": "sparsinglaw.thresholds", "kind": "input", "version": 1,
      "rule": str, "weighted": bool,     # weighted: |x_j| * ||W[:, j]|| < t_p (CETT); else |x_j| < t_p (TEAL)
      "model": {"name": str, "n_projections": int, "shapes": [[out, in] per projection]},
      "method": {"name": str, "parameter": str, "value": float, "ppl_ratio": float, "kept_share": float,
                 "bytes_ratio": float, "p": float | null},
      "calibration": {"data": str, "n_tokens": int, "seq_len": int},
      "projections": [{"name": str, "block": int, "kind": str, "in_features": int, "out_features": int,
                       "threshold": float}],
      "provenance": {...}
    }

A combined file is ``{"format", "kind": "combined", "version": 1, "output": <output document>, "input":
<input document>}``; its output part is read through the kinds' registry (any version the output kind
has). Installing puts a pre-hook on every listed projection replacing ``x`` by ``x * keep``."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from sparsinglaw import export
from sparsinglaw.errors import ConfigError, ModelError, NoAnswerError
from sparsinglaw.inputs.results import SCHEMA, InputSparsityResult, MethodResult
from sparsinglaw.models.projections import KINDS, Projection, attach_inputs, find_projections
from sparsinglaw.sparse.counts import KeptCounts, ModuleCounts
from sparsinglaw.sparse.input_sparse import sparsify_inputs, with_output_rules
from sparsinglaw.targets.projection_inputs import CETT_RULE, keep_mask
from sparsinglaw.thresholds.kinds import (  # one file format, three kinds
    FORMAT,
    AppliedThresholds,
    ThresholdsKind,
    check_threshold_values,
    read_document,
    register_kind,
)
from sparsinglaw.thresholds.output import Thresholds

INPUT_VERSION = 1
COMBINED_VERSION = 1
_ROW_KEYS = ("name", "block", "kind", "in_features", "out_features", "threshold")


@register_kind
@dataclass
class InputThresholds(ThresholdsKind):
    """Per-projection input thresholds of one method with the identity of the model they were measured on."""

    projections: list[dict[str, Any]]  # name, block, kind, in_features, out_features, threshold
    weighted: bool
    model: dict[str, Any]
    method: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    rule: str = CETT_RULE
    format: str = FORMAT
    kind: str = "input"
    kept_quantity: ClassVar[str] = "kept share of projection inputs"
    version: int = INPUT_VERSION
    sparse_modules: ClassVar[str] = "projections"

    @property
    def values(self) -> list[float]:
        return [float(p["threshold"]) for p in self.projections]

    @classmethod
    def from_method(cls, result: InputSparsityResult, method: str | MethodResult) -> InputThresholds:
        """The thresholds of one method of an input-sparsity result."""
        m = result.method(method) if isinstance(method, str) else method
        if m.no_answer:
            raise NoAnswerError(f"{m.method} has no PPL-{result.p:g}% answer ({m.no_answer}); no thresholds file "
                                "written: try another --p or more evaluation tokens")
        rows = [{k: getattr(p, k) for k in _ROW_KEYS} for p in m.projections]
        return cls(
            projections=rows, weighted=m.method == "cett", rule=m.rule,
            model={"name": result.model, "n_projections": len(rows),
                   "shapes": [[p.out_features, p.in_features] for p in m.projections]},
            method={"name": m.method, "parameter": m.parameter, "value": m.value, "ppl_ratio": m.ppl_ratio,
                    "kept_share": m.kept_share, "bytes_ratio": m.bytes_ratio, "p": result.p},
            calibration={"data": result.data_source, "n_tokens": result.n_tokens, "seq_len": result.seq_len},
            provenance=result.provenance)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path = "thresholds") -> InputThresholds:
        if data.get("version") != INPUT_VERSION:
            raise ConfigError(f"{source} is input-thresholds version {data.get('version')!r}; this sparsinglaw reads "
                              f"{INPUT_VERSION}: write it again with 'sparsinglaw inputs --thresholds-output'")
        rows = data.get("projections")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise ConfigError(f"{source}: no per-projection thresholds ('projections' must be a non-empty list)")
        check_threshold_values(rows, source)
        missing = [k for k in _ROW_KEYS if any(k not in r for r in rows)]
        if missing or not isinstance(data.get("weighted"), bool):
            raise ConfigError(f"{source}: input thresholds need 'weighted' (true/false) and per projection "
                              f"{', '.join(_ROW_KEYS)}")
        known = {k: data[k] for k in ("model", "method", "calibration", "provenance", "rule") if k in data}
        return cls(projections=[dict(r) for r in rows], weighted=data["weighted"], **known)

    @classmethod
    def from_result_document(cls, data: dict[str, Any], source: str | Path) -> InputThresholds | None:
        """An 'sparsinglaw inputs --output' result holding exactly one method, as that method's thresholds
        (None for other documents)."""
        if data.get("schema") != SCHEMA:
            return None
        try:
            result = InputSparsityResult.from_dict(data)
        except TypeError as err:
            raise ConfigError(f"{source} is not a complete input-sparsity result ({err})") from None
        if len(result.methods) != 1:
            names = ", ".join(m.method for m in result.methods)
            raise ConfigError(f"{source} holds {len(result.methods)} methods ({names}); write one method's "
                              "thresholds with 'sparsinglaw inputs --thresholds-output FILE --thresholds-method NAME'")
        return cls.from_method(result, result.methods[0])

    def check(self, model) -> None:
        self.find(model)

    def install_hooks(self, model, stack: ExitStack) -> tuple[KeptCounts, KeptCounts]:
        """A masking pre-hook on each listed projection."""
        projections = self.find(model)
        position = {id(p): i for i, p in enumerate(projections)}
        values, norms = self.values, [p.down_column_norms() if self.weighted else None for p in projections]
        stats = KeptCounts(len(projections))

        def mask(p: Projection, x: torch.Tensor) -> torch.Tensor:
            i = position[id(p)]
            return stats.masked(i, x, keep_mask(x, values[i], norms[i]))

        stack.enter_context(attach_inputs(projections, mask))
        return stats, stats

    def describe(self) -> dict[str, Any]:
        m = self.method
        metric = {"name": m.get("name"), "setting": m.get("value"), "activation_ratio": m.get("kept_share")}
        return self.entries("projections") | {"metric": metric}

    def export_spec(self, model) -> dict[str, Any]:
        return {"kind": "input", "rule": self.rule, "format_version": 1, "model": self.model,
                "metric": self.method, "calibration": self.calibration,
                "modules": export.input_modules(model, self)}

    def projection_plan(self, model) -> list[tuple[str, float, bool, None]]:
        """(projection, threshold, weighted rule, no output rule) per row, for ``sparse.sparsify_inputs``."""
        self.find(model)  # ModelError when the file names projections of another model
        return [(row["name"], float(row["threshold"]), self.weighted, None) for row in self.projections]

    def sparsify(self, model, *, policy=None) -> AppliedThresholds:
        """Input-sparse projections (``sparse.input_sparse``)."""
        handle = sparsify_inputs(model, self, policy=policy)
        counts = ModuleCounts(handle)
        return AppliedThresholds.swapped(handle, counts, counts)

    def find(self, model) -> list[Projection]:
        """The model's projections these thresholds name, in file order; ``ModelError`` when the model has
        other projections (names or shapes differ)."""
        kinds = [k for k in KINDS if any(p["kind"] == k for p in self.projections)]
        by_name = {p.name: p for p in find_projections(model, kinds)}
        found = []
        for row in self.projections:
            p = by_name.get(row["name"])
            if p is None or [p.out_features, p.in_features] != [row["out_features"], row["in_features"]]:
                raise ModelError(f"input thresholds are for {self.model.get('name')} ({len(self.projections)} "
                                 f"projections); this model has no {row['name']} of shape "
                                 f"{row['out_features']}x{row['in_features']}: measure thresholds on this model")
            found.append(p)
        return found


@register_kind
@dataclass
class CombinedThresholds(ThresholdsKind):
    """Output (FFN neuron) and input (projection) thresholds of one model, applied together."""

    output: Thresholds
    input: InputThresholds
    format: str = FORMAT
    kind: str = "combined"
    version: int = COMBINED_VERSION
    sparse_modules: ClassVar[str] = "projections"  # the output rule rides on each down projection

    @property
    def values(self) -> list[float]:
        return self.output.values + self.input.values

    @property
    def model(self) -> dict[str, Any]:
        return self.output.model

    @property
    def metric(self) -> dict[str, Any]:
        return self.output.metric

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path = "thresholds") -> CombinedThresholds:
        if data.get("version") != COMBINED_VERSION:
            raise ConfigError(f"{source} is combined-thresholds version {data.get('version')!r}; this sparsinglaw "
                              f"reads {COMBINED_VERSION}: combine the output and input files again")
        if not isinstance(data.get("output"), dict) or not isinstance(data.get("input"), dict):
            raise ConfigError(f"{source}: a combined thresholds file needs an 'output' and an 'input' document")
        return cls(output=read_document(data["output"], source, kind="output"),
                   input=InputThresholds.from_dict(data["input"], source))

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "kind": self.kind, "version": self.version,
                "output": self.output.to_dict(), "input": self.input.to_dict()}

    def check(self, model) -> None:
        self.output.check(model)
        self.input.check(model)

    def install_hooks(self, model, stack: ExitStack) -> tuple[KeptCounts, KeptCounts]:
        return self.output.install_hooks(model, stack)[0], self.input.install_hooks(model, stack)[0]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": self.values, "output": self.output.describe(),
                "input": self.input.describe(), "metric": self.metric}

    def export_spec(self, model) -> dict[str, Any]:
        spec = self.output.export_spec(model)
        spec["modules"] += export.input_modules(model, self.input)
        spec.update(kind="combined", input_rule=self.input.rule, input_metric=self.input.method)
        return spec

    def projection_plan(self, model) -> list[tuple[str, float, bool, tuple | None]]:
        """The input plan with each FFN's output threshold as a second rule on its down projection."""
        return with_output_rules(model, self.input.projection_plan(model), self.output)

    def sparsify(self, model, *, policy=None) -> AppliedThresholds:
        """Input-sparse projections for both rules; ``stats`` are the down projections' counts, whose
        inputs are the FFN neurons (kept by both rules)."""
        handle = sparsify_inputs(model, self, policy=policy)
        return AppliedThresholds.swapped(handle, ModuleCounts(handle, "down_proj"), ModuleCounts(handle))


"""Export a model with fixed thresholds as a transformers model directory that needs no sparsinglaw.

``export_sparse(model, tokenizer, thresholds, out_dir)`` writes the weights, config and tokenizer unchanged;
``modeling_sparse.py``, a self-contained ``Sparse<Base>`` subclass of the base class whose pre-hooks on the
listed modules apply the thresholds' rule exactly as ``apply_thresholds`` does (identical logits: output
thresholds on each FFN down projection, input thresholds on each projection, combined ones both); a
``config.json`` that keeps the base ``model_type`` (plain transformers loads config and tokenizer), names
``Sparse<Base>`` in ``architectures`` and gains ``auto_map`` and ``sparsinglaw_sparsity`` (rule and modules);
and ``sparsity_thresholds.json``. Load it with ``trust_remote_code=True`` for the sparse forward (without it,
transformers builds the dense base model)::

    model = AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)

Supported: down projections that are ``nn.Linear`` or GPT-2's ``Conv1D``; mixture-of-experts models are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.fileio import atomic_write_text
from sparsinglaw.models import find_ffn_layers
from sparsinglaw.models.adapters import ModuleFFNLayer

CONFIG_KEY = "sparsinglaw_sparsity"

MODELING_TEMPLATE = '''"""Sparse forward for a model exported by sparsinglaw (needs only torch and transformers).

Every module listed in ``config.{key}["modules"]`` gets a forward pre-hook that zeroes the inputs whose
contribution is below the entry's threshold t: ``x = x * (|x_j| * ||W[:, j]|| >= t)`` (an FFN down
projection's input is h, the paper's rule), or ``x * (|x_j| >= t)`` for entries with ``"weighted": false``.
Without that config entry the model is dense.
Load with ``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)``.
"""

import torch
from transformers import {base} as _Base


def _column_norms(module, layout):
    """||W[:, j]|| per input j of the module (float32), cached until the weight changes."""
    weight = module.weight
    key = (weight.data_ptr(), weight._version, weight.device, weight.dtype)
    if getattr(module, "_sparse_norms_key", None) != key:
        dim = 0 if layout == "out_in" else 1
        with torch.no_grad():
            module._sparse_norms = weight.detach().float().norm(dim=dim)
        module._sparse_norms_key = key
    return module._sparse_norms


def _sparsifier(threshold, layout, weighted):
    """A pre-hook zeroing inputs x_j with |x_j| (* ||W[:, j]|| when weighted) < threshold; one per config
    entry, so a module listed twice (output and input thresholds of a down projection) applies both."""

    def sparsify(module, args):
        x = args[0]
        magnitude = x.abs()
        if weighted:
            magnitude = magnitude * _column_norms(module, layout).to(device=x.device, dtype=x.dtype)
        keep = (magnitude >= threshold).to(x.dtype)
        return (x * keep, *args[1:])

    return sparsify


class {name}(_Base):
    """{base} whose projections apply fixed thresholds to their inputs (see the module docstring)."""

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        spec = getattr(config, "{key}", None) or {{}}
        self._sparse_handles = []
        for entry in spec.get("modules", []):
            hook = _sparsifier(float(entry["threshold"]), entry.get("weight_layout", "out_in"),
                               entry.get("weighted", True))
            self._sparse_handles.append(self.get_submodule(entry["path"]).register_forward_pre_hook(hook))
'''


def _weight_layout(layer: ModuleFFNLayer) -> str:
    """``out_in`` when ``W_down`` is stored as ``(d_model, d_f)`` (nn.Linear), ``in_out`` for the transpose."""
    weight = layer.down.weight
    if weight is layer.down_weight():
        return "out_in"
    if tuple(weight.shape) == tuple(layer.down_weight().shape[::-1]):
        return "in_out"
    raise ModelError(f"cannot export {layer.name}: its down projection's weight is not W_down or its transpose")


def sparsity_spec(model: nn.Module, thresholds) -> dict[str, Any]:
    """The ``config.json`` entry: rule(s), thresholds and the module paths whose inputs they apply to: per
    FFN the down projection (output kind), per projection the projection itself (input kind), or both
    (combined); each kind builds its own (``ThresholdsKind.export_spec``) from the helpers below."""
    return thresholds.export_spec(model)


def output_spec(model: nn.Module, thresholds, rule: str) -> dict[str, Any]:
    """The entry of output (FFN neuron) thresholds: each FFN's down projection and its threshold."""
    layers = find_ffn_layers(model)
    values = thresholds.checked_values(layers)  # a NaN would be written into config.json and keep every neuron
    paths = {module: path for path, module in model.named_modules()}
    modules = []
    for layer, value in zip(layers, values):
        if not isinstance(layer, ModuleFFNLayer) or layer.expert is not None:
            raise ModelError(
                f"export supports dense FFNs with a down-projection module; {layer.name} of "
                f"{type(model).__name__} is {type(layer).__name__} (mixture-of-experts models are not supported)"
            )
        modules.append({"path": paths[layer.down], "threshold": float(value), "weight_layout": _weight_layout(layer)})
    return {"kind": "output", "rule": rule, "format_version": 1, "model": thresholds.model,
            "metric": thresholds.metric, "calibration": thresholds.calibration, "modules": modules}


def input_modules(model: nn.Module, thresholds) -> list[dict[str, Any]]:
    """One entry per projection (``W`` stored out x in for ``nn.Linear``, in x out for ``Conv1D``); the model
    must match."""
    projections = thresholds.find(model)
    return [{"path": p.name, "threshold": value, "weight_layout": "in_out" if p.transposed else "out_in",
             "weighted": thresholds.weighted}
            for p, value in zip(projections, thresholds.values)]


def modeling_source(model: nn.Module) -> tuple[str, str]:
    """(model class name, source of ``modeling_sparse.py``) for ``model``'s architecture."""
    import transformers

    base, config_base = type(model).__name__, type(model.config).__name__
    if getattr(transformers, base, None) is not type(model) or getattr(transformers, config_base, None) is not type(
            model.config):
        raise ModelError(
            f"cannot export {base}: it is not a transformers class (remote-code or custom models are not supported)"
        )
    name = f"Sparse{base}"
    return name, MODELING_TEMPLATE.format(base=base, name=name, key=CONFIG_KEY)


def export_sparse(model: nn.Module, tokenizer, thresholds, out_dir: str | Path, *,
                  overwrite: bool = False) -> Path:
    """Write ``out_dir`` (see the module docstring); returns it. The in-memory model is not modified."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose a new --output directory or pass --overwrite")
    spec = sparsity_spec(model, thresholds)
    name, source = modeling_source(model)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    atomic_write_text(out / "modeling_sparse.py", source)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["auto_map"] = {**config.get("auto_map", {}), "AutoModelForCausalLM": f"modeling_sparse.{name}"}
    config["architectures"] = [name]  # what the forward is; model_type stays the base's (see the docstring)
    config[CONFIG_KEY] = spec
    atomic_write_text(config_path, json.dumps(config, indent=2) + "\n")
    thresholds.save(out / "sparsity_thresholds.json")
    return out

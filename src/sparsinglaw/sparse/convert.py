"""Swap a model's FFN modules for sparse ones in place, and back.

    handle = sparsify(model, Thresholds.load("result.json"))   # or zeros_only=True for ReLU models
    model.generate(...)                                         # the thresholded model, computed sparsely
    restore(model)                                              # the original modules, bitwise unchanged

or ``with sparsify(model, thresholds) as handle: ...``. Gated Llama-family and non-gated GPT-NeoX/Falcon
MLPs; ``state_dict()`` is unchanged while swapped. The modules cache what they derive from the weights, so
after changing weights in place, ``restore`` and ``sparsify`` again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from torch import nn

from sparsinglaw.errors import ModelError
from sparsinglaw.models import find_ffn_layers
from sparsinglaw.models.adapters import decoder_blocks
from sparsinglaw.sparse.ffn import SparseFFN, SparseGatedFFN, SparseNonGatedFFN
from sparsinglaw.sparse.modules import SparsePolicy, SwappedModules


class FFNThresholdValues(Protocol):
    """What ``sparsify`` reads from a thresholds object (the output kind, ``thresholds.output.Thresholds``):
    one threshold per FFN, checked against the model. A protocol, not an import: the thresholds kinds build
    these modules, so they sit above this one."""

    def checked_values(self, layers: list) -> list[float]: ...


# (class, role -> child name) for each supported FFN layout, tried in order.
LAYOUTS = (
    (SparseGatedFFN, {"gate": "gate_proj", "up": "up_proj", "down": "down_proj", "act": "act_fn"}),
    (SparseNonGatedFFN, {"up": "dense_h_to_4h", "down": "dense_4h_to_h", "act": "act"}),
)


class SparseHandle(SwappedModules):
    """The swapped-in sparse FFNs of one model, by module name in FFN order."""

    def _mean_ratio(self, counter: str) -> float:
        ratios = [getattr(m.counters, counter) / m.counters.offered_pairs for m in self.modules.values()
                  if m.counters.offered_pairs]
        return sum(ratios) / len(ratios) if ratios else float("nan")

    def activation_ratio(self) -> float:
        """Kept (token, neuron) pairs over all pairs, averaged over layers, since the last reset."""
        return self._mean_ratio("kept_pairs")

    def computed_ratio(self) -> float:
        """Share of up/down neuron projections actually computed (1.0 = dense), averaged over layers."""
        return self._mean_ratio("computed")


def _layout(mlp: nn.Module):
    for cls, parts in LAYOUTS:
        if all(isinstance(getattr(mlp, name, None), nn.Module) for name in parts.values()):
            if all(hasattr(getattr(mlp, parts[r]), "weight") for r in parts if r != "act"):
                return cls, parts
    return None, None


def _threshold_values(thresholds, zeros_only: bool, layers) -> list[float]:
    if zeros_only or thresholds is None:
        return [0.0] * len(layers)
    if not isinstance(thresholds, Sequence):  # a thresholds file's output kind
        return thresholds.checked_values(layers)
    values = [float(t) for t in thresholds]
    if len(values) != len(layers):
        raise ModelError(f"{len(values)} thresholds for a model with {len(layers)} FFNs")
    return values


def sparsify(model: nn.Module, thresholds: FFNThresholdValues | Sequence[float] | None = None, *,
             zeros_only: bool = False, policy: SparsePolicy | None = None) -> SparseHandle:
    """Replace every FFN of ``model`` by a sparse FFN computing the thresholded model (``zeros_only`` or no
    thresholds: drop exactly the neurons with ``h_i == 0``, i.e. the dense model). Undo with ``restore``."""
    if any(isinstance(m, SparseFFN) for m in model.modules()):
        raise ModelError("the model's FFNs are already sparse; call restore(model) first")
    layers = find_ffn_layers(model)
    if any(layer.expert is not None for layer in layers):
        raise ModelError("sparse FFNs do not support mixture-of-experts models yet")
    values = _threshold_values(thresholds, zeros_only, layers)
    blocks, names = decoder_blocks(model), {id(m): name for name, m in model.named_modules()}
    plan = []
    for layer, value in zip(layers, values):
        mlp = getattr(blocks[layer.block], "mlp", None)
        cls, parts = _layout(mlp) if mlp is not None else (None, None)
        if cls is None:
            raise ModelError(f"no sparse FFN for {type(mlp).__name__} at {layer.name}; supported: Llama-family "
                             "gate_proj/up_proj/down_proj and GPT-NeoX/Falcon dense_h_to_4h/dense_4h_to_h MLPs")
        plan.append((names[id(mlp)], cls(mlp, parts, value, policy)))
    handle = SparseHandle(model)
    for name, sparse in plan:  # swap only once every FFN is known to be supported
        handle.swap_in(name, sparse)
    return handle


def restore(model: nn.Module) -> int:
    """Put the original FFN modules back; returns how many were restored."""
    count = 0
    for block in decoder_blocks(model):
        mlp = getattr(block, "mlp", None)
        if isinstance(mlp, SparseFFN):
            block.mlp = mlp.original
            count += 1
    return count
